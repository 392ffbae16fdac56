//! Latches: one-shot signals that a waiter can probe and sleep on.
//!
//! A latch starts unset and is set exactly once. Setting may free the latch: the waiter
//! is allowed to return (and pop the stack frame holding the latch) the moment it sees
//! the latch set, so `set` takes a raw pointer and touches nothing after the store that
//! publishes it.
//!
//! - [`WorkerLatch`]: waited on by a pool worker (`join`, `scope`, a cross-pool
//!   `install`). The waiter either suspends its fiber on the latch (the setter then
//!   makes that fiber ready on its worker) or, on the worker's own stack, runs other
//!   work on fibers and may go to sleep (the setter then wakes the worker).
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
const SUSPENDED: u8 = 2;
const SET: u8 = 3;

/// A latch owned by one worker, which may sleep on it or suspend a fiber on it.
///
/// Protocol: the owner moves `UNSET -> SLEEPING` before it parks and parks only if that
/// succeeded; or it records its fiber and moves `UNSET -> SUSPENDED` before suspending
/// that fiber, and suspends only if that succeeded. The setter swaps in `SET`: if it saw
/// `SLEEPING` it unparks the owner (the parker remembers an unpark that comes before the
/// park); if it saw `SUSPENDED` it makes the recorded fiber ready on the owner's worker
/// (which wakes it). Either way no wake-up is lost, and a suspended owner cannot free
/// the latch before the setter is done with it: it runs again only once made ready.
pub(crate) struct WorkerLatch<'r> {
    state: AtomicU8,
    /// The owner's suspended fiber (valid in state `SUSPENDED`).
    fiber: AtomicUsize,
    registry: &'r Registry,
    owner: usize,
}

impl<'r> WorkerLatch<'r> {
    pub(crate) fn new(registry: &'r Registry, owner: usize) -> Self {
        WorkerLatch {
            state: AtomicU8::new(UNSET),
            fiber: AtomicUsize::new(0),
            registry,
            owner,
        }
    }

    /// True if the latch belongs to a worker of `registry`.
    pub(crate) fn registry_is(&self, registry: &Registry) -> bool {
        std::ptr::eq(self.registry, registry)
    }

    /// Announces that the owner is about to suspend `fiber` on the latch. Returns false
    /// if the latch is set (do not suspend).
    pub(crate) fn prepare_suspend(&self, fiber: usize) -> bool {
        self.fiber.store(fiber, Ordering::Relaxed);
        self.state
            .compare_exchange(UNSET, SUSPENDED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
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
        // the swap, after which a sleeping owner may free the latch.
        let (registry, owner, state, fiber) = unsafe {
            (
                (*this).registry,
                (*this).owner,
                &(*this).state,
                &(*this).fiber,
            )
        };
        // The registry outlives its workers' latches: the owner waits on this latch and
        // holds the registry alive until it has seen the latch set.
        match state.swap(SET, Ordering::AcqRel) {
            // The mutant (loom builds only) forgets to wake a sleeping owner.
            SLEEPING if !crate::sync::mutant("latch_lost_wakeup") => registry.wake_waiter(owner),
            // The owner's fiber stays suspended (and the latch alive) until made ready.
            // The mutant (loom builds only) forgets to make it ready.
            SUSPENDED if !crate::sync::mutant("fiber_lost_wakeup") => {
                registry.make_ready(owner, fiber.load(Ordering::Relaxed))
            }
            _ => {}
        }
    }
}

/// A latch set when every registered job has finished: `scope`'s pending counter.
///
/// The count starts at one, for the scope's own body.
pub(crate) struct CountLatch<'r> {
    pending: AtomicUsize,
    pub(crate) latch: DoneLatch<'r>,
}

/// What a [`CountLatch`] sets at zero: the latch of whoever waits for it.
pub(crate) enum DoneLatch<'r> {
    /// A worker (of any pool) waits.
    Worker(WorkerLatch<'r>),
    /// A thread outside every pool blocks (`in_place_scope` called there).
    Thread(LockLatch),
}

impl<'r> CountLatch<'r> {
    /// A counter whose zero sets `latch`.
    pub(crate) fn new(latch: DoneLatch<'r>) -> Self {
        CountLatch {
            pending: AtomicUsize::new(1),
            latch,
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
            match latch {
                DoneLatch::Worker(latch) => unsafe { WorkerLatch::set(latch) },
                DoneLatch::Thread(latch) => unsafe { LockLatch::set(latch) },
            }
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
