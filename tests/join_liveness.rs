//! A `join`'s second half reaches an idle worker even while its owner runs user code
//! that never calls into weft: the first half blocks on a raw barrier or channel until
//! the second half runs, or computes for a long time while another worker is free.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::{pool, watchdog};

#[test]
fn halves_meeting_at_a_raw_barrier_on_a_fresh_pool_both_run() {
    watchdog(30, "barrier join on a fresh pool", || {
        for _ in 0..50 {
            // A fresh pool each time: its workers may not be looking for work yet when
            // the join hides its second half.
            let pool = pool(2);
            let barrier = Barrier::new(2);
            pool.install(|| weft::join(|| barrier.wait(), || barrier.wait()));
        }
    });
}

#[test]
fn a_first_half_blocked_on_a_channel_the_second_half_feeds_returns() {
    watchdog(30, "channel join", || {
        let pool = pool(2);
        for round in 0..50 {
            let (tx, rx) = mpsc::channel();
            // Keep the other worker busy for a moment at the time of the join, so it is
            // not looking for work then.
            let got = pool.install(|| {
                weft::join(
                    move || {
                        weft::join(
                            move || rx.recv().unwrap(),
                            || std::thread::sleep(Duration::from_micros(200)),
                        )
                        .0
                    },
                    || tx.send(round).unwrap(),
                )
                .0
            });
            assert_eq!(got, round);
        }
    });
}

#[test]
fn a_long_first_half_does_not_serialize_the_second_once_a_worker_is_free() {
    watchdog(60, "long first half", || {
        let pool = pool(2);
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let start = Instant::now();
        let (first_done, second_done) = pool.install(|| {
            // Occupy the other worker, then let it go after 200 ms.
            weft::spawn(move || {
                let _ = gate_rx.recv_timeout(Duration::from_millis(200));
            });
            std::thread::sleep(Duration::from_millis(20));
            weft::join(
                || {
                    // Computes for 1.5 s without calling weft.
                    let until = Instant::now() + Duration::from_millis(1500);
                    let mut x = 0u64;
                    while Instant::now() < until {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                    start.elapsed()
                },
                || start.elapsed(),
            )
        });
        drop(gate_tx);
        // The second half ran on the freed worker, long before the first half ended.
        assert!(
            second_done + Duration::from_millis(500) < first_done,
            "second half ended at {second_done:?}, first at {first_done:?}"
        );
    });
}

#[test]
fn a_first_half_that_panics_waits_for_its_claimed_second_half_before_unwinding() {
    use std::sync::atomic::{AtomicBool, Ordering};
    watchdog(30, "panicking first half", || {
        let pool = pool(2);
        for _ in 0..20 {
            let started = AtomicBool::new(false);
            let finished = AtomicBool::new(false);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.install(|| {
                    weft::join(
                        || {
                            // Wait (behind weft's back) until the other worker has taken
                            // the second half, then fail.
                            while !started.load(Ordering::Acquire) {
                                std::hint::spin_loop();
                            }
                            panic!("first half fails");
                        },
                        || {
                            started.store(true, Ordering::Release);
                            std::thread::sleep(Duration::from_millis(20));
                            finished.store(true, Ordering::Release);
                        },
                    )
                })
            }));
            let payload = outcome.expect_err("the first half's panic is re-raised");
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"first half fails"));
            // `join` returned only after the second half (on the other worker) was done
            // with the frame it borrows from.
            assert!(finished.load(Ordering::Acquire));
        }
    });
}

/// A join tree of `depth` levels whose `2^depth` leaves all wait at `barrier`.
fn barrier_tree(depth: u32, barrier: &Barrier) {
    if depth == 0 {
        barrier.wait();
    } else {
        weft::join(
            || barrier_tree(depth - 1, barrier),
            || barrier_tree(depth - 1, barrier),
        );
    }
}

/// A chain of `depth` nested joins: each first half nests the next, each second half
/// and the innermost first half wait at `barrier` (`depth + 1` waiters).
fn barrier_chain(depth: u32, barrier: &Barrier) {
    if depth == 0 {
        barrier.wait();
    } else {
        weft::join(
            || barrier_chain(depth - 1, barrier),
            || {
                barrier.wait();
            },
        );
    }
}

#[test]
fn nested_halves_meeting_at_a_raw_barrier_all_run() {
    // One published half per worker is not enough here: the owner's inner halves must
    // reach idle workers although it never calls into weft again.
    watchdog(120, "nested barrier joins", || {
        for _ in 0..100 {
            for threads in [2, 4] {
                let pool = pool(threads);
                let barrier = Barrier::new(threads);
                pool.install(|| barrier_tree(threads.trailing_zeros(), &barrier));
            }
            for threads in [3, 8] {
                let pool = pool(threads);
                let barrier = Barrier::new(threads);
                pool.install(|| barrier_chain(threads as u32 - 1, &barrier));
            }
        }
    });
}

#[test]
fn an_inner_second_half_feeds_the_channel_its_first_half_waits_on() {
    watchdog(60, "nested channel join", || {
        let pool = pool(2);
        for round in 0..200 {
            let (tx, rx) = mpsc::channel();
            let got = pool.install(|| {
                weft::join(
                    move || {
                        weft::join(move || rx.recv().unwrap(), move || tx.send(round).unwrap()).0
                    },
                    || (),
                )
                .0
            });
            assert_eq!(got, round);
        }
    });
}

/// `depth` nested joins whose second halves do nothing, around an innermost join whose
/// first half waits on a channel that its second half feeds.
fn channel_at_the_bottom(depth: u32, round: u32) -> u32 {
    if depth == 0 {
        let (tx, rx) = mpsc::channel();
        weft::join(move || rx.recv().unwrap(), move || tx.send(round).unwrap()).0
    } else {
        weft::join(|| channel_at_the_bottom(depth - 1, round), || ()).0
    }
}

#[test]
fn a_first_half_nested_deeper_than_any_bound_gets_its_second_half_run_elsewhere() {
    // The outer halves take the slot and the eagerly pushed places; the innermost one
    // stays private, and its owner blocks in user code: an idle worker must snatch it.
    watchdog(120, "deeply nested channel join", || {
        for threads in [2, 3, 8] {
            let pool = pool(threads);
            for depth in [1, 2, 3, 8, 9, 20, 200] {
                for round in 0..5 {
                    let got = pool.install(|| channel_at_the_bottom(depth, round));
                    assert_eq!(got, round, "{threads} threads, depth {depth}");
                }
            }
        }
    });
}

/// `depth` nested joins whose second halves each send one message; the innermost first
/// half waits for all of them.
fn every_level_feeds_the_bottom(depth: u32, tx: mpsc::Sender<u32>, rx: mpsc::Receiver<u32>) -> u32 {
    if depth == 0 {
        drop(tx);
        return rx.iter().sum();
    }
    let to_bottom = tx.clone();
    weft::join(
        move || every_level_feeds_the_bottom(depth - 1, tx, rx),
        move || to_bottom.send(depth).unwrap(),
    )
    .0
}

#[test]
fn an_owner_blocked_under_many_private_halves_gets_every_one_run_elsewhere() {
    watchdog(120, "many private halves under a blocked owner", || {
        for threads in [2, 4] {
            let pool = pool(threads);
            for depth in [2, 10, 64] {
                let (tx, rx) = mpsc::channel();
                let sum = pool.install(|| every_level_feeds_the_bottom(depth, tx, rx));
                assert_eq!(
                    sum,
                    depth * (depth + 1) / 2,
                    "{threads} threads, depth {depth}"
                );
            }
        }
    });
}

/// Spins for `micros` without calling into weft.
fn compute_for(micros: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(micros) {
        std::hint::spin_loop();
    }
}

/// `depth` nested joins whose second halves count themselves; the innermost first half
/// and every first half on its way out compute for a while without calling into weft,
/// so idle workers snatch private halves while their owner unlinks them.
fn busy_chain(depth: u32, ran: &AtomicUsize) -> usize {
    if depth == 0 {
        compute_for(200);
        return 0;
    }
    let (below, one) = weft::join(
        || {
            let below = busy_chain(depth - 1, ran);
            compute_for(u64::from(depth % 3) * 20);
            below
        },
        || {
            ran.fetch_add(1, Ordering::Relaxed);
            1
        },
    );
    below + one
}

#[test]
fn halves_snatched_while_their_owners_return_run_exactly_once() {
    watchdog(120, "busy chains", || {
        for threads in [2, 3, 4] {
            let pool = pool(threads);
            for round in 0..1000 {
                let depth = 1 + round % 12;
                let ran = AtomicUsize::new(0);
                let counted = pool.install(|| busy_chain(depth, &ran));
                assert_eq!(counted, depth as usize, "{threads} threads, depth {depth}");
                assert_eq!(ran.load(Ordering::Relaxed), depth as usize);
            }
        }
    });
}

#[test]
fn a_second_half_run_elsewhere_that_panics_re_raises_its_payload_in_its_join() {
    // Nested deeper than the pushed and published halves, so on Linux the innermost
    // second half is snatched by the idle worker; it feeds the first half, then panics.
    watchdog(60, "panicking snatched half", || {
        let pool = pool(2);
        for depth in [0, 2, 5] {
            for _ in 0..20 {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pool.install(|| panicking_at_the_bottom(depth))
                }));
                let payload = outcome.expect_err("the second half's panic is re-raised");
                assert_eq!(payload.downcast_ref::<&str>(), Some(&"second half fails"));
            }
        }
    });
}

fn panicking_at_the_bottom(depth: u32) {
    if depth == 0 {
        let (tx, rx) = mpsc::channel();
        weft::join(
            move || rx.recv().unwrap(),
            move || {
                tx.send(()).unwrap();
                panic!("second half fails");
            },
        );
    } else {
        weft::join(|| panicking_at_the_bottom(depth - 1), || ());
    }
}

#[test]
fn a_first_half_blocked_under_a_hundred_thousand_nested_joins_gets_its_second_half_run() {
    // Thieves walk a bounded part of the list per snatch: a very deep list of private
    // halves costs each snatch that bound, not its whole length.
    watchdog(120, "100k-deep private halves", || {
        let pool = pool(2);
        assert_eq!(pool.install(|| channel_at_the_bottom(100_000, 7)), 7);
        let (tx, rx) = mpsc::channel();
        let depth = 20_000u64;
        let sum = pool.install(|| every_level_feeds_the_bottom(depth as u32, tx, rx));
        assert_eq!(u64::from(sum), depth * (depth + 1) / 2);
    });
}

/// `depth` nested joins below `level`; the innermost first half waits for the message
/// the second half of level `feeder` sends.
fn blocked_under(
    level: u32,
    depth: u32,
    feeder: u32,
    tx: &Mutex<mpsc::Sender<u32>>,
    rx: &Mutex<mpsc::Receiver<u32>>,
) -> u32 {
    if level > depth {
        return rx.lock().unwrap().recv().unwrap();
    }
    let (below, _) = weft::join(
        || blocked_under(level + 1, depth, feeder, tx, rx),
        || {
            if level == feeder {
                tx.lock().unwrap().send(level).unwrap();
            }
        },
    );
    below
}

#[test]
fn a_first_half_blocked_under_hundreds_of_private_halves_gets_an_old_one_run() {
    // The other worker is busy (and so not hungry) while the chain is built, so every
    // half below the pushed and published ones stays private; the one the bottom waits
    // for is far down the list, below hundreds of newer private halves.
    watchdog(120, "old private half under hundreds of newer ones", || {
        let pool = pool(2);
        for (depth, feeder) in [(300, 20), (260, 2), (1000, 500), (2000, 3)] {
            let started = AtomicBool::new(false);
            let (tx, rx) = mpsc::channel();
            let (tx, rx) = (Mutex::new(tx), Mutex::new(rx));
            let got = pool.install(|| {
                weft::join(
                    || {
                        while !started.load(Ordering::Acquire) {
                            std::hint::spin_loop();
                        }
                        blocked_under(1, depth, feeder, &tx, &rx)
                    },
                    || {
                        started.store(true, Ordering::Release);
                        std::thread::sleep(Duration::from_millis(50));
                    },
                )
                .0
            });
            assert_eq!(got, feeder, "depth {depth}");
        }
    });
}

#[test]
fn a_first_half_polling_with_yield_now_runs_its_own_private_second_half() {
    // The other worker is held until the flag is set, so only the polling worker itself
    // can run the innermost second half, which it keeps private (the outer halves took
    // its deque and slot).
    watchdog(60, "yield_now for a private half", || {
        let pool = pool(2);
        for local in [false, true] {
            let (flag, held) = (AtomicBool::new(false), AtomicBool::new(false));
            pool.install(|| {
                weft::scope(|s| {
                    s.spawn(|_| {
                        held.store(true, Ordering::Release);
                        while !flag.load(Ordering::Acquire) {
                            std::hint::spin_loop();
                        }
                    });
                    while !held.load(Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                    let poll = || {
                        while !flag.load(Ordering::Acquire) {
                            if local {
                                weft::yield_local();
                            } else {
                                weft::yield_now();
                            }
                        }
                    };
                    let set = || flag.store(true, Ordering::Release);
                    weft::join(|| weft::join(|| weft::join(poll, set), || ()), || ());
                });
            });
        }
    });
}
