//! Putting idle workers to sleep and waking them for new work.
//!
//! Each worker has a [`Parker`]: a flag and a condition variable. An unpark that comes
//! before the park is remembered, so a wake-up sent between "I decided to sleep" and
//! "I am asleep" is not lost.
//!
//! The idle list ([`Sleep`]) holds the workers asleep for lack of work. The handshake
//! with a thread that publishes new work is Dekker's:
//!
//! ```text
//!   sleeper                               publisher
//!   add self to idle list                 push job
//!   sleepers += 1  (SeqCst RMW)           fence(SeqCst)
//!   fence(SeqCst)                         if sleepers > 0: wake one
//!   look for work; if none: park
//! ```
//!
//! At least one side sees the other: either the publisher sees the sleeper and wakes it,
//! or the sleeper sees the job. Pushes onto a *running* worker's own deque skip the
//! publisher's fence: if a sleeper misses such a job, its owner runs it. The owner does
//! the full handshake when it stops running (it blocks, or sleeps with jobs left in its
//! deque), so every job always has a runner.

use crate::sync::atomic::{fence, AtomicUsize, Ordering};
use crate::sync::{Condvar, Mutex};

/// A per-thread park/unpark flag.
pub(crate) struct Parker {
    notified: Mutex<bool>,
    cond: Condvar,
}

impl Parker {
    pub(crate) fn new() -> Self {
        Parker {
            notified: Mutex::new(false),
            cond: Condvar::new(),
        }
    }

    /// Blocks until unparked (returns at once if an unpark is already pending).
    pub(crate) fn park(&self) {
        let mut notified = self.notified.lock();
        while !*notified {
            notified = self.cond.wait(notified);
        }
        *notified = false;
    }

    pub(crate) fn unpark(&self) {
        let mut notified = self.notified.lock();
        *notified = true;
        self.cond.notify_one();
    }
}

/// The list of workers asleep for lack of work.
pub(crate) struct Sleep {
    sleepers: AtomicUsize,
    idle: Mutex<Vec<usize>>,
}

impl Sleep {
    pub(crate) fn new() -> Self {
        Sleep {
            sleepers: AtomicUsize::new(0),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Adds `worker` to the idle list; the caller then fences, looks for work once more,
    /// and parks only if it found none.
    pub(crate) fn register(&self, worker: usize) {
        let mut idle = self.idle.lock();
        idle.push(worker);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        drop(idle);
        fence(Ordering::SeqCst);
    }

    /// Removes `worker` from the idle list if a waker has not already done so.
    pub(crate) fn unregister(&self, worker: usize) {
        let mut idle = self.idle.lock();
        if let Some(pos) = idle.iter().position(|&w| w == worker) {
            idle.swap_remove(pos);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// After publishing work that no running thread is sure to take (the injector, or
    /// the deque of a worker that stops running): fence, then wake a sleeper if any.
    pub(crate) fn announce_work(&self, unpark: impl FnOnce(usize)) {
        fence(Ordering::SeqCst);
        self.wake_one(unpark);
    }

    /// Cheap hint after a push onto a running worker's own deque.
    #[inline]
    pub(crate) fn hint_work(&self, unpark: impl FnOnce(usize)) {
        if self.sleepers.load(Ordering::Relaxed) > 0 {
            self.wake_one(unpark);
        }
    }

    fn wake_one(&self, unpark: impl FnOnce(usize)) {
        if self.sleepers.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut idle = self.idle.lock();
        if let Some(worker) = idle.pop() {
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            drop(idle);
            unpark(worker);
        }
    }
}
