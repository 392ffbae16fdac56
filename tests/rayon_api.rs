//! rayon-core's API on weft: what a rayon user calls, with rayon's semantics, including
//! the awkward cases (panics, nesting, calls from outside and from another pool).

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Barrier, Mutex};

use weft::{BroadcastContext, ThreadPool, ThreadPoolBuilder, Yield};

fn pool(threads: usize) -> ThreadPool {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

#[test]
fn join_context_reports_a_migrated_second_half() {
    let pool = pool(2);
    pool.install(|| {
        // Inside the pool the first half never migrates.
        let (a, _) = weft::join_context(|ctx| ctx.migrated(), |_| ());
        assert!(!a);
        // The second half waits for the first to let it go: it can only finish on
        // another worker, which must then report it migrated.
        let barrier = Barrier::new(2);
        let (first, second) = weft::join_context(
            |ctx| {
                barrier.wait();
                (ctx.migrated(), weft::current_thread_index())
            },
            |ctx| {
                barrier.wait();
                (ctx.migrated(), weft::current_thread_index())
            },
        );
        assert!(!first.0);
        assert!(second.0, "the second half ran on another thread");
        assert_ne!(first.1, second.1);
    });
    // From outside any pool both halves run on the global pool: both migrated.
    let (a, b) = weft::join_context(|ctx| ctx.migrated(), |ctx| ctx.migrated());
    assert!(a && b);
}

#[test]
fn join_context_halves_run_in_order_inline_when_nobody_steals() {
    let pool = pool(1);
    let (a, b) = pool.install(|| weft::join_context(|ctx| ctx.migrated(), |ctx| ctx.migrated()));
    assert!(!a && !b);
}

#[test]
fn in_place_scope_runs_its_body_on_the_calling_thread() {
    // Outside any pool: the body stays here (a `!Send` borrow is fine), jobs go to the
    // global pool.
    let here = std::thread::current().id();
    let not_send = Cell::new(5);
    let ran_on = Mutex::new(Vec::new());
    weft::in_place_scope(|s| {
        assert_eq!(std::thread::current().id(), here);
        let v = not_send.get();
        let ran_on = &ran_on;
        for _ in 0..4 {
            s.spawn(move |_| {
                ran_on
                    .lock()
                    .unwrap()
                    .push((v, weft::current_thread_index()))
            });
        }
    });
    let ran_on = ran_on.into_inner().unwrap();
    assert_eq!(ran_on.len(), 4);
    assert!(ran_on.iter().all(|&(v, index)| v == 5 && index.is_some()));

    // A pool's `in_place_scope` from outside: jobs on that pool.
    let pool = pool(2);
    let seen = Mutex::new(Vec::new());
    pool.in_place_scope(|s| {
        assert_eq!(std::thread::current().id(), here);
        for _ in 0..8 {
            s.spawn(|_| seen.lock().unwrap().push(pool.current_thread_index()));
        }
    });
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 8);
    assert!(seen.iter().all(|i| matches!(i, Some(0 | 1))));
}

#[test]
fn in_place_scope_from_a_worker_of_another_pool_waits_without_stalling() {
    let outer = pool(1);
    let inner = pool(2);
    let total = outer.install(|| {
        let total = AtomicUsize::new(0);
        inner.in_place_scope(|s| {
            for i in 0..100 {
                let total = &total;
                s.spawn(move |_| {
                    total.fetch_add(i, Ordering::Relaxed);
                });
            }
        });
        total.into_inner()
    });
    assert_eq!(total, 4950);
}

#[test]
fn in_place_scope_re_raises_the_first_panic_after_all_jobs() {
    let finished = AtomicUsize::new(0);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        weft::in_place_scope(|s| {
            s.spawn(|_| panic!("first"));
            for _ in 0..10 {
                s.spawn(|_| {
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
        })
    }));
    let payload = caught.expect_err("the job's panic reaches the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"first"));
    assert_eq!(finished.load(Ordering::SeqCst), 10);
}

#[test]
fn scope_fifo_starts_jobs_oldest_first_on_one_thread() {
    let pool = pool(1);
    let order = Mutex::new(Vec::new());
    pool.scope_fifo(|s| {
        for i in 0..10 {
            let order = &order;
            s.spawn_fifo(move |s| {
                order.lock().unwrap().push(i);
                if i == 0 {
                    // Spawned later: runs after everything spawned before it.
                    s.spawn_fifo(move |_| order.lock().unwrap().push(100));
                }
            });
        }
    });
    let order = order.into_inner().unwrap();
    assert_eq!(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100]);

    // A plain scope on one thread runs them newest first.
    assert_eq!(scope_spawn_order(&pool), [3, 2, 1, 0]);
}

/// The order in which `pool` runs four jobs spawned into a plain scope.
fn scope_spawn_order(pool: &ThreadPool) -> Vec<usize> {
    let order = Mutex::new(Vec::new());
    pool.scope(|s| {
        for i in 0..4 {
            let order = &order;
            s.spawn(move |_| order.lock().unwrap().push(i));
        }
    });
    order.into_inner().unwrap()
}

#[test]
fn in_place_scope_fifo_and_spawn_fifo_keep_order() {
    let pool = pool(1);
    let order = Mutex::new(Vec::new());
    pool.in_place_scope_fifo(|s| {
        for i in 0..5 {
            let order = &order;
            s.spawn_fifo(move |_| order.lock().unwrap().push(i));
        }
    });
    assert_eq!(order.into_inner().unwrap(), [0, 1, 2, 3, 4]);

    let (tx, rx) = channel();
    pool.install(|| {
        for i in 0..5 {
            let tx = tx.clone();
            weft::spawn_fifo(move || tx.send(i).unwrap());
        }
    });
    drop(tx);
    assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
}

#[test]
fn broadcast_runs_once_on_every_worker_in_index_order() {
    for threads in [1, 2, 3, 8] {
        let pool = pool(threads);
        let seen = pool.broadcast(|ctx: BroadcastContext<'_>| {
            assert_eq!(weft::current_thread_index(), Some(ctx.index()));
            (ctx.index(), ctx.num_threads())
        });
        let expected: Vec<_> = (0..threads).map(|i| (i, threads)).collect();
        assert_eq!(seen, expected);
        // From inside the pool too (the caller runs its own share while it waits).
        let inside = pool.install(|| weft::broadcast(|ctx| ctx.index()));
        assert_eq!(inside, (0..threads).collect::<Vec<_>>());
    }
}

#[test]
fn broadcast_reaches_workers_that_are_busy_or_asleep() {
    let pool = pool(3);
    // Worker 0 computes for a while inside a job; the broadcast still gets its share
    // done once it returns, and the others immediately.
    let (tx, rx) = channel();
    pool.spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        tx.send(()).unwrap();
    });
    let results = pool.broadcast(|ctx| ctx.index() * 10);
    assert_eq!(results, [0, 10, 20]);
    rx.recv().unwrap();
}

#[test]
fn nested_broadcasts_finish() {
    let pool = pool(3);
    let sums = pool.broadcast(|outer| {
        let outer = outer.index(); // a context is not `Sync`, as in rayon
        let inner = weft::broadcast(|ctx| ctx.index() + outer);
        inner.iter().sum::<usize>()
    });
    assert_eq!(sums, [3, 6, 9]);
}

#[test]
fn broadcast_re_raises_the_lowest_index_panic_after_every_call() {
    let pool = pool(3);
    let calls = AtomicUsize::new(0);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        pool.broadcast(|ctx| {
            calls.fetch_add(1, Ordering::SeqCst);
            if ctx.index() > 0 {
                panic!("worker {}", ctx.index());
            }
        })
    }));
    let payload = caught.expect_err("a broadcast call panicked");
    assert_eq!(payload.downcast_ref::<String>().unwrap(), "worker 1");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // The pool still works.
    assert_eq!(pool.broadcast(|ctx| ctx.index()), [0, 1, 2]);
}

#[test]
fn spawn_broadcast_runs_everywhere_and_hands_panics_to_the_handler() {
    let panics = Arc::new(AtomicUsize::new(0));
    let handler_count = Arc::clone(&panics);
    let pool = ThreadPoolBuilder::new()
        .num_threads(3)
        .panic_handler(move |_| {
            handler_count.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let (tx, rx) = channel();
    let tx = Mutex::new(tx);
    pool.spawn_broadcast(move |ctx| {
        tx.lock().unwrap().send(ctx.index()).unwrap();
        if ctx.index() == 2 {
            panic!("spawned broadcast");
        }
    });
    let mut indices: Vec<usize> = rx.iter().take(3).collect();
    indices.sort();
    assert_eq!(indices, [0, 1, 2]);
    pool.shutdown();
    assert_eq!(panics.load(Ordering::SeqCst), 1);
}

#[test]
fn scope_spawn_broadcast_borrows_and_is_waited_for() {
    let pool = pool(4);
    let hits = Mutex::new(vec![0; 4]);
    pool.scope(|s| {
        s.spawn_broadcast(|_, ctx| hits.lock().unwrap()[ctx.index()] += 1);
    });
    assert_eq!(*hits.lock().unwrap(), [1, 1, 1, 1]);
    pool.scope_fifo(|s| {
        s.spawn_broadcast(|_, ctx| hits.lock().unwrap()[ctx.index()] += 1);
    });
    assert_eq!(hits.into_inner().unwrap(), [2, 2, 2, 2]);
}

#[test]
fn yield_now_runs_a_pending_job_and_reports_idle_otherwise() {
    assert_eq!(weft::yield_now(), None);
    assert_eq!(weft::yield_local(), None);
    assert_eq!(weft::current_thread_has_pending_tasks(), None);
    let pool = pool(1);
    pool.install(|| {
        let ran = AtomicUsize::new(0);
        weft::scope(|s| {
            s.spawn(|_| {
                ran.fetch_add(1, Ordering::SeqCst);
            });
            assert_eq!(weft::current_thread_has_pending_tasks(), Some(true));
            assert_eq!(weft::yield_local(), Some(Yield::Executed));
            assert_eq!(ran.load(Ordering::SeqCst), 1);
            assert_eq!(weft::current_thread_has_pending_tasks(), Some(false));
            assert_eq!(weft::yield_now(), Some(Yield::Idle));
        });
    });
    // A pool's variants answer only on its own workers.
    let other = self::pool(1);
    assert_eq!(other.yield_now(), None);
    assert_eq!(pool.install(|| other.yield_local()), None);
    assert_eq!(pool.install(|| pool.yield_now()), Some(Yield::Idle));
    assert_eq!(
        pool.install(|| pool.current_thread_has_pending_tasks()),
        Some(false)
    );
}

#[test]
fn start_and_exit_handlers_run_once_per_worker() {
    let started = Arc::new(Mutex::new(Vec::new()));
    let exited = Arc::new(Mutex::new(Vec::new()));
    let (s, e) = (Arc::clone(&started), Arc::clone(&exited));
    let pool = ThreadPoolBuilder::new()
        .num_threads(3)
        .start_handler(move |i| {
            assert_eq!(weft::current_thread_index(), Some(i));
            s.lock().unwrap().push(i)
        })
        .exit_handler(move |i| e.lock().unwrap().push(i))
        .build()
        .unwrap();
    pool.install(|| ());
    pool.shutdown();
    let mut started = started.lock().unwrap().clone();
    let mut exited = exited.lock().unwrap().clone();
    started.sort();
    exited.sort();
    assert_eq!(started, [0, 1, 2]);
    assert_eq!(exited, [0, 1, 2]);
}

#[test]
fn a_panicking_start_handler_goes_to_the_panic_handler() {
    let panics = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&panics);
    let pool = ThreadPoolBuilder::new()
        .num_threads(2)
        .start_handler(|i| panic!("start {i}"))
        .panic_handler(move |_| {
            count.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    assert_eq!(pool.install(|| weft::join(|| 1, || 2)), (1, 2));
    pool.shutdown();
    assert_eq!(panics.load(Ordering::SeqCst), 2);
}

#[test]
fn a_spare_reports_an_index_below_num_threads() {
    let pool = pool(1);
    let (tx, rx) = channel::<Option<usize>>();
    let index = pool.install(move || {
        // The only worker blocks; the spare that stands in for it runs the job.
        weft::spawn(move || tx.send(weft::current_thread_index()).unwrap());
        weft::blocking(|| rx.recv().unwrap())
    });
    assert_eq!(index, Some(0));
    assert!(pool.stats().peak_live_threads >= 2, "a spare ran the job");
}

#[test]
#[allow(deprecated)]
fn breadth_first_workers_take_their_own_jobs_oldest_first() {
    let pool = ThreadPoolBuilder::new()
        .num_threads(1)
        .breadth_first()
        .build()
        .unwrap();
    assert_eq!(scope_spawn_order(&pool), [0, 1, 2, 3]);
}

#[test]
#[allow(deprecated)]
fn the_deprecated_configuration_still_builds_pools() {
    let pool = ThreadPool::new(weft::Configuration::new().num_threads(2)).unwrap();
    assert_eq!(pool.current_num_threads(), 2);
    let built = weft::Configuration::new()
        .num_threads(1)
        .thread_name(|i| format!("old-{i}"))
        .build()
        .unwrap();
    let name = built.install(|| std::thread::current().name().map(str::to_owned));
    assert_eq!(name.as_deref(), Some("old-0"));
}

#[test]
fn rayons_limits_and_error_texts() {
    assert_eq!(weft::max_num_threads(), 0xFFFF);
    weft::join(|| (), || ()); // makes sure the global pool exists
    let err = ThreadPoolBuilder::new().build_global().unwrap_err();
    assert_eq!(
        err.to_string(),
        "The global thread pool has already been initialized."
    );
}

#[test]
fn a_spawn_handler_starts_every_worker_and_its_errors_fail_build() {
    let started = Mutex::new(Vec::new());
    let pool = ThreadPoolBuilder::new()
        .num_threads(3)
        .thread_name(|i| format!("custom-{i}"))
        .spawn_handler(|thread| {
            started
                .lock()
                .unwrap()
                .push((thread.index(), thread.name().map(str::to_owned)));
            std::thread::Builder::new().spawn(|| thread.run())?;
            Ok(())
        })
        .build()
        .unwrap();
    assert_eq!(pool.broadcast(|ctx| ctx.index()), [0, 1, 2]);
    assert_eq!(
        pool.max_threads(),
        3,
        "no spares without weft starting threads"
    );
    pool.shutdown();
    let started = started.into_inner().unwrap();
    assert_eq!(
        started,
        (0..3)
            .map(|i| (i, Some(format!("custom-{i}"))))
            .collect::<Vec<_>>()
    );

    let err = ThreadPoolBuilder::new()
        .num_threads(2)
        .spawn_handler(|_| Err(std::io::Error::other("no threads today")))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no threads today"), "{err}");
}

#[test]
fn build_scoped_runs_workers_on_scoped_threads_that_may_borrow() {
    let wrapped = AtomicUsize::new(0);
    let sum = ThreadPoolBuilder::new()
        .num_threads(2)
        .build_scoped(
            |thread| {
                wrapped.fetch_add(1, Ordering::SeqCst);
                thread.run()
            },
            |pool| pool.install(|| weft::join(|| 20, || 22)),
        )
        .unwrap();
    assert_eq!(sum, (20, 22));
    // Every worker thread has exited (and passed through the wrapper) by now.
    assert_eq!(wrapped.load(Ordering::SeqCst), 2);
}

#[test]
fn use_current_thread_makes_the_builder_worker_zero() {
    std::thread::spawn(|| {
        let pool = ThreadPoolBuilder::new()
            .num_threads(2)
            .use_current_thread()
            .build()
            .unwrap();
        assert_eq!(weft::current_thread_index(), Some(0));
        assert_eq!(pool.current_thread_index(), Some(0));
        // Its waits run the pool's jobs, on fibers, and the other worker steals.
        let total = AtomicUsize::new(0);
        pool.scope(|s| {
            for i in 0..1000 {
                let total = &total;
                s.spawn(move |_| {
                    let (a, b) = weft::join(|| i, || 1);
                    total.fetch_add(a + b, Ordering::Relaxed);
                });
            }
        });
        assert_eq!(total.into_inner(), 499_500 + 1000);
        assert_eq!(pool.broadcast(|ctx| ctx.index()), [0, 1]);
        // Already a worker: a second adoption fails with rayon's text.
        let err = ThreadPoolBuilder::new()
            .num_threads(1)
            .use_current_thread()
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "The current thread is already part of another thread pool."
        );
        // Shutting down from the adopted thread waits for the other worker only, and the
        // thread stays a (lone) worker afterwards.
        pool.shutdown();
        assert_eq!(weft::current_thread_index(), Some(0));
        assert_eq!(weft::join(|| 3, || 4), (3, 4));
    })
    .join()
    .unwrap();
}

/// A chain of queries: `Link(n)` needs `Link(n - 1)`; many requests race for it.
struct Link;
impl weft::query::Query for Link {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "link";
    fn compute(cx: &weft::query::Cx<'_>, n: &u32) -> u64 {
        let below = if *n == 0 { 0 } else { cx.get::<Link>(&(n - 1)) };
        let parts = cx.par_map(&[1u64, 2, 3], |_, x| *x);
        below + parts.iter().sum::<u64>()
    }
}

#[test]
fn an_adopted_thread_resumes_its_suspended_fibers_before_leaving_a_wait() {
    // Worker 0 is the test's own thread: jobs it runs on fibers inside its waits
    // suspend on queries the other worker computes; only worker 0 may resume them, so
    // each of its waits must stay until they are done, or the run hangs.
    std::thread::spawn(|| {
        let pool = ThreadPoolBuilder::new()
            .num_threads(2)
            .use_current_thread()
            .build()
            .unwrap();
        for round in 0..20 {
            let engine = weft::query::Engine::new();
            let keys: Vec<u32> = (0..30).rev().collect();
            let values = pool
                .install(|| engine.run(|cx| cx.par_map(&keys, |cx, k| cx.get::<Link>(k))))
                .unwrap();
            assert_eq!(values[0], 6 * 30, "round {round}");
            assert_eq!(values[29], 6, "round {round}");
        }
    })
    .join()
    .unwrap();
}
