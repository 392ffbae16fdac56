//! Latches: one-shot signals that a waiter can probe and sleep on.
//!
//! A latch starts unset and is set exactly once. Setting may free the latch: the waiter
//! is allowed to return (and pop the stack frame holding the latch) the moment it sees
//! the latch set, so `set` takes a raw pointer and touches nothing after the store that
//! publishes it.
//!
//! - [`WorkerLatch`]: waited on by a pool worker that keeps running other jobs while it
//!   waits (`join`, `scope`). If the worker went to sleep, the setter wakes it.
//! - [`CountLatch`]: a [`WorkerLatch`] set when a counter of pending jobs reaches zero
//!   (`scope`).
//! - [`LockLatch`]: waited on by a thread that blocks outright (a thread outside the
//!   pool calling `install`, or a worker of another pool).

use super::registry::Registry;
use crate::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use crate::sync::{Condvar, Mutex};

/// Something a job sets when it completes.
pub(crate) trait Latch {
    /// Sets the latch.
    ///
    /// # Safety
    /// `this` must be live on entry; it may be freed by the waiter as soon as the latch
    /// becomes observable as set, so implementations must not touch it afterwards.
    unsafe fn set(this: *const Self);
}

const UNSET: u8 = 0;
const SLEEPING: u8 = 1;
const SET: u8 = 2;

/// A latch owned by one worker, which may sleep on it.
///
/// Protocol: the owner moves `UNSET -> SLEEPING` before it parks and parks only if that
/// succeeded; the setter swaps in `SET` and unparks the owner if it saw `SLEEPING`. The
/// parker remembers an unpark that comes before the park, so no wake-up is lost.
pub(crate) struct WorkerLatch<'r> {
    state: AtomicU8,
    registry: &'r Registry,
    owner: usize,
}

impl<'r> WorkerLatch<'r> {
    pub(crate) fn new(registry: &'r Registry, owner: usize) -> Self {
        WorkerLatch {
            state: AtomicU8::new(UNSET),
            registry,
            owner,
        }
    }

    /// True once the latch is set; a set latch stays set.
    #[inline]
    pub(crate) fn probe(&self) -> bool {
        self.state.load(Ordering::Acquire) == SET
    }

    /// Announces that the owner is about to park. Returns false if the latch is set.
    pub(crate) fn prepare_sleep(&self) -> bool {
        self.state
            .compare_exchange(UNSET, SLEEPING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Withdraws the announcement after waking (a no-op if the latch was set).
    pub(crate) fn finish_sleep(&self) {
        let _ = self
            .state
            .compare_exchange(SLEEPING, UNSET, Ordering::AcqRel, Ordering::Acquire);
    }
}

impl Latch for WorkerLatch<'_> {
    unsafe fn set(this: *const Self) {
        // SAFETY: `this` is live on entry (trait contract). Copy out what we need before
        // the swap, after which the owner may free the latch.
        let (registry, owner, state) = unsafe { ((*this).registry, (*this).owner, &(*this).state) };
        // The mutant (loom builds only) forgets to wake a sleeping owner.
        if state.swap(SET, Ordering::AcqRel) == SLEEPING
            && !crate::sync::mutant("latch_lost_wakeup")
        {
            // The registry outlives its workers' latches: the setter is one of its
            // workers (or a job of it) and holds the registry alive.
            registry.unpark_worker(owner);
        }
    }
}

/// A latch set when every registered job has finished: `scope`'s pending counter.
///
/// The count starts at one, for the scope's own body.
pub(crate) struct CountLatch<'r> {
    pending: AtomicUsize,
    pub(crate) latch: WorkerLatch<'r>,
}

impl<'r> CountLatch<'r> {
    pub(crate) fn new(registry: &'r Registry, owner: usize) -> Self {
        CountLatch {
            pending: AtomicUsize::new(1),
            latch: WorkerLatch::new(registry, owner),
        }
    }

    /// Registers one more job that must finish before the latch is set.
    pub(crate) fn increment(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }
}

impl Latch for CountLatch<'_> {
    unsafe fn set(this: *const Self) {
        // SAFETY: `this` is live on entry; until the count reaches zero, the owner keeps
        // waiting (it probes the inner latch, which is set only below).
        let (pending, latch) = unsafe { (&(*this).pending, &(*this).latch) };
        if pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: the inner latch is live until it is set.
            unsafe { WorkerLatch::set(latch) };
        }
    }
}

/// A latch that a thread blocks on outright.
pub(crate) struct LockLatch {
    set: Mutex<bool>,
    cond: Condvar,
}

impl LockLatch {
    pub(crate) fn new() -> Self {
        LockLatch {
            set: Mutex::new(false),
            cond: Condvar::new(),
        }
    }

    /// Blocks until the latch is set.
    pub(crate) fn wait(&self) {
        let mut set = self.set.lock();
        while !*set {
            set = self.cond.wait(set);
        }
    }
}

impl Latch for LockLatch {
    unsafe fn set(this: *const Self) {
        // SAFETY: `this` is live on entry. The waiter cannot return before it takes the
        // mutex after we release it, and we touch nothing after `notify_all`, which runs
        // while we hold the lock, so the latch outlives our last access.
        let this = unsafe { &*this };
        let mut set = this.set.lock();
        *set = true;
        this.cond.notify_all();
    }
}
