//! The wait graph: blocking on an in-progress entry, and finding cycles as they close.
//!
//! Nodes are in-progress [`QueryJob`]s. "A waits for B" when A requested B (B's
//! `parent` is A), or when A is blocked on B's entry (A is in B's `waited_by`).
//!
//! **Blocking.** Before a request in the context of job X blocks on an entry owned by
//! job Y, it takes the graph mutex and walks from X along "is waited for by" (X's
//! parent, the jobs blocked on X, recursively). Reaching Y means the new edge X -> Y
//! closes a cycle: the walked path is the participant list, every participant is marked,
//! and the requester unwinds instead of blocking. Otherwise the waiter is registered
//! under the same lock, then parks. The mutex is never taken on a hit or a claim.
//!
//! **Completing.** A slot's state word (see `table.rs`) goes from the owner's address to
//! the same with the `WAITED` bit (a waiter registered, under the lock) to a final state
//! (an atomic swap by the owner). Only an owner that swaps out `WAITED` takes the lock,
//! to wake its waiters and unlink them, so an uncontended completion takes no lock, and
//! a registering waiter can never be missed. Waiters are listed in the owner's job, so
//! waiting costs nothing until it happens.
//!
//! **Waiting.** A registered waiter waits on its slot's [`WorkerLatch`], as for a join
//! half: its fiber suspends (or the worker's own stack runs other work on fibers), so
//! a blocked request holds no thread. The owner's completion sets the latch.
//!
//! **Backstop.** No timer: the pool knows exactly when none of its workers can run
//! anything while no thread is inside `weft::blocking` and no wait depends on another
//! pool (see `Registry::enter_idle`). It then tells every engine with waiters on it
//! ([`StallListener`]), and this graph releases those waiters with a deadlock report.
//! A waiter whose owner computes on another pool counts as such a cross-pool wait.

use std::collections::HashSet;

use super::error::{Cycle, WaitEdge, WaitGraphReport};
use super::job::QueryJob;
use super::table::state;
use crate::pool::registry::{Registry, StallListener};
use crate::pool::{Latch, WorkerLatch};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Arc, Mutex};

/// How a parked waiter was released.
#[derive(Clone)]
pub(crate) enum WaitOutcome {
    Done,
    Deadlock(WaitGraphReport),
}

/// One blocked request.
pub(crate) struct WaitSlot {
    /// Set once the request may go on; the waiter waits on it.
    pub(crate) latch: WorkerLatch<'static>,
    outcome: Mutex<Option<WaitOutcome>>,
    requester: *const QueryJob,
    owner: *const QueryJob,
    /// The waiter's pool, if its owner computes on another pool (a cross-pool wait).
    cross_pool: Option<*const Registry>,
}

// SAFETY: the pointers are only dereferenced under the graph mutex while the slot is
// registered, when the protocol keeps their targets alive (module docs); the latch's
// registry outlives the waiting worker's wait.
unsafe impl Send for WaitSlot {}
// SAFETY: as above.
unsafe impl Sync for WaitSlot {}

impl WaitSlot {
    /// Releases the waiter with `outcome`. Called once, by whoever unregistered the slot.
    fn finish(&self, outcome: WaitOutcome) {
        *self.outcome.lock() = Some(outcome);
        if let Some(registry) = self.cross_pool {
            // SAFETY: the waiter's registry outlives its wait, which is not over yet.
            unsafe { (*registry).external_wait_end() };
        }
        // SAFETY: the slot is alive (we hold an `Arc` to it) and its latch is set once.
        unsafe { WorkerLatch::set(&self.latch) };
    }

    /// How the wait ended (after the latch is set).
    pub(crate) fn outcome(&self) -> WaitOutcome {
        self.outcome
            .lock()
            .clone()
            .expect("a slot's outcome is stored before its latch is set")
    }
}

/// What [`WaitGraph::block_on`] decided.
pub(crate) enum BlockOn {
    /// The entry completed meanwhile.
    Done,
    /// The wait would close a cycle; the requester has been marked as a participant.
    Cycle,
    /// Registered: park on the slot.
    Wait(Arc<WaitSlot>),
}

/// The engine's wait graph.
pub(crate) struct WaitGraph {
    /// Guards every *graph* field; holds all registered waiters (for the deadlock dump).
    lock: Mutex<Vec<Arc<WaitSlot>>>,
}

impl StallListener for WaitGraph {
    fn pool_stalled(&self, registry: &Registry) {
        self.declare_deadlock(registry);
    }
}

impl WaitGraph {
    pub(crate) fn new() -> Self {
        WaitGraph {
            lock: Mutex::new(Vec::new()),
        }
    }

    /// A request in the context of `requester` (none for a root request), made by a
    /// worker of `registry` (index `waiter`), found the slot whose state word is
    /// `entry` in progress: detect a cycle or register a waiter.
    pub(crate) fn block_on(
        &self,
        requester: Option<&QueryJob>,
        entry: &AtomicUsize,
        registry: &Registry,
        waiter: usize,
    ) -> BlockOn {
        let mut blocked = self.lock.lock();
        // Announce the waiter; from now on the owner's completion takes this lock.
        let mut now = entry.load(Ordering::Acquire);
        while state::is_running(now) && now & state::WAITED == 0 {
            match entry.compare_exchange(
                now,
                now | state::WAITED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => now |= state::WAITED,
                Err(changed) => now = changed,
            }
        }
        if !state::is_running(now) {
            return BlockOn::Done;
        }
        let owner = state::owner(now) as *const QueryJob;
        // The mutant (loom builds only) never looks for a cycle.
        if let Some(requester) = requester.filter(|_| !crate::sync::mutant("no_cycle_check")) {
            if let Some(path) = find_path(requester, owner) {
                mark_cycle(&path);
                return BlockOn::Cycle;
            }
        }
        // SAFETY: the owner is alive while the entry is not done (it completes under
        // this lock, state WAITED).
        let owner_registry = unsafe { (*owner).registry };
        let cross_pool = (!std::ptr::eq(owner_registry, registry)).then_some(registry as *const _);
        if cross_pool.is_some() {
            registry.external_wait_begin();
        }
        // SAFETY (of the lifetime): the waiting worker keeps its registry alive until it
        // has seen the latch set.
        let latch_registry: &'static Registry = unsafe { &*(registry as *const Registry) };
        let slot = Arc::new(WaitSlot {
            latch: WorkerLatch::new(latch_registry, waiter),
            outcome: Mutex::new(None),
            requester: requester.map_or(std::ptr::null(), |r| r as *const _),
            owner,
            cross_pool,
        });
        // SAFETY: we hold the graph mutex; the owner cannot be freed before its
        // completion takes this mutex (the state has `WAITED`).
        unsafe {
            let waits = (*owner).waits_mut();
            waits.waiters.push(slot.clone());
            if let Some(requester) = requester {
                waits.waited_by.push(requester as *const _);
            }
        }
        blocked.push(slot.clone());
        BlockOn::Wait(slot)
    }

    /// The cycle `job` was marked with (it must have been marked).
    pub(crate) fn cycle_of(&self, job: &QueryJob) -> Cycle {
        let _lock = self.lock.lock();
        // SAFETY: we hold the graph mutex, which guards `cycle`.
        unsafe { job.waits() }
            .and_then(|w| w.cycle.clone())
            .expect("a job marked in_cycle has its cycle stored")
    }

    /// Publishes `done` (a final state; the result is stored) in the state word `entry`
    /// of the slot `owner` computed, and wakes its waiters.
    #[inline]
    pub(crate) fn complete(&self, entry: &AtomicUsize, done: usize, owner: &QueryJob) {
        let running = entry.swap(done, Ordering::AcqRel);
        debug_assert_eq!(
            state::owner(running),
            owner as *const QueryJob as usize,
            "a running memo's state names its owner until the owner completes it"
        );
        if running & state::WAITED != 0 {
            self.wake_waiters(owner);
        }
    }

    /// The waiters of `owner`'s slot, which just completed: released.
    #[cold]
    #[inline(never)]
    fn wake_waiters(&self, owner: &QueryJob) {
        let mut blocked = self.lock.lock();
        // SAFETY: we hold the graph mutex, which guards both lists.
        let waiters = unsafe {
            let waits = owner.waits_mut();
            waits.waited_by.clear();
            std::mem::take(&mut waits.waiters)
        };
        blocked.retain(|b| !waiters.iter().any(|w| Arc::ptr_eq(b, w)));
        drop(blocked);
        for waiter in waiters {
            waiter.finish(WaitOutcome::Done);
        }
    }

    /// The blocked requests right now (see [`WaitGraphReport`]).
    pub(crate) fn report(&self) -> WaitGraphReport {
        Self::describe_blocked(&self.lock.lock())
    }

    fn describe_blocked(blocked: &[Arc<WaitSlot>]) -> WaitGraphReport {
        // SAFETY: registered slots name live jobs (module docs); the caller holds the
        // lock.
        let describe = |job: *const QueryJob| unsafe { job.as_ref() }.map(QueryJob::describe);
        WaitGraphReport::new(
            blocked
                .iter()
                .map(|slot| WaitEdge {
                    waiter: describe(slot.requester),
                    owner: describe(slot.owner).expect("every entry in progress has an owner"),
                })
                .collect(),
        )
    }

    /// Takes back a registered wait whose requester gives up before the owner completed
    /// (it unwinds). A no-op if the owner already released it.
    pub(crate) fn unregister(&self, slot: &Arc<WaitSlot>) {
        let mut blocked = self.lock.lock();
        let Some(pos) = blocked.iter().position(|b| Arc::ptr_eq(b, slot)) else {
            return;
        };
        blocked.swap_remove(pos);
        // SAFETY: we hold the graph mutex; the slot was still registered, so its entry
        // has not completed and its owner and requester are alive.
        unsafe { Self::unlink(slot) };
        drop(blocked);
        if let Some(registry) = slot.cross_pool {
            // SAFETY: the waiter (us) keeps its registry alive.
            unsafe { (*registry).external_wait_end() };
        }
    }

    /// Removes `slot` from its owner's waiters and its requester from the owner's
    /// `waited_by`.
    ///
    /// # Safety
    /// The caller holds the graph mutex and `slot` is registered.
    unsafe fn unlink(slot: &Arc<WaitSlot>) {
        // SAFETY: forwarded from the caller: the targets are alive while registered.
        unsafe {
            let waits = (*slot.owner).waits_mut();
            waits.waiters.retain(|s| !Arc::ptr_eq(s, slot));
            if !slot.requester.is_null() {
                if let Some(pos) = waits.waited_by.iter().position(|&r| r == slot.requester) {
                    waits.waited_by.swap_remove(pos);
                }
            }
        }
    }

    /// Releases every waiter of `registry` (which can run nothing any more) with a
    /// deadlock report of the graph.
    fn declare_deadlock(&self, registry: &Registry) {
        let mut blocked = self.lock.lock();
        let stuck = |slot: &Arc<WaitSlot>| slot.latch.registry_is(registry);
        if !blocked.iter().any(stuck) {
            return;
        }
        let report = Self::describe_blocked(&blocked);
        let (slots, others): (Vec<_>, Vec<_>) =
            std::mem::take(&mut *blocked).into_iter().partition(stuck);
        *blocked = others;
        for slot in &slots {
            // SAFETY: we hold the graph mutex and every slot was registered.
            unsafe { Self::unlink(slot) };
        }
        drop(blocked);
        for slot in slots {
            slot.finish(WaitOutcome::Deadlock(report.clone()));
        }
    }
}

/// Looks for a chain "`target` waits for ... waits for `from`". Returns it as
/// `[from, .., target]`. Caller holds the graph mutex.
fn find_path(from: &QueryJob, target: *const QueryJob) -> Option<Vec<*const QueryJob>> {
    let from = from as *const QueryJob;
    if from == target {
        return Some(vec![from]);
    }
    let mut seen = HashSet::new();
    // Depth-first, remembering how each job was reached.
    let mut stack = vec![(from, 0usize)];
    let mut path: Vec<*const QueryJob> = Vec::new();
    seen.insert(from);
    while let Some((job, depth)) = stack.pop() {
        path.truncate(depth);
        path.push(job);
        // SAFETY: every job reached is alive: parents wait for their children, and
        // blocked jobs stay registered (under the mutex we hold) until they resume.
        let job_ref = unsafe { &*job };
        let mut waiting_for_job = Vec::new();
        if !job_ref.parent.is_null() {
            waiting_for_job.push(job_ref.parent);
        }
        // SAFETY: we hold the graph mutex, which guards `waited_by`.
        if let Some(waits) = unsafe { job_ref.waits() } {
            waiting_for_job.extend(waits.waited_by.iter().copied());
        }
        for next in waiting_for_job {
            if next == target {
                path.push(next);
                return Some(path);
            }
            if seen.insert(next) {
                stack.push((next, depth + 1));
            }
        }
    }
    None
}

/// Marks every job of `path` (`[from, .., target]`, see [`find_path`]) as a participant
/// of the cycle it forms. Caller holds the graph mutex.
fn mark_cycle(path: &[*const QueryJob]) {
    // SAFETY: the jobs are alive (see `find_path`).
    let jobs: Vec<&QueryJob> = path.iter().rev().map(|&j| unsafe { &*j }).collect();
    // `jobs` is in wait order: each waits for the next, the last for the first.
    let least = (0..jobs.len())
        .min_by(|&a, &b| jobs[a].canonical_cmp(jobs[b]))
        .unwrap_or(0);
    let cycle = Cycle::new(jobs.iter().map(|j| j.describe()).collect(), least);
    for job in &jobs {
        job.mark_in_cycle(&cycle);
    }
}
