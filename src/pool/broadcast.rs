//! `broadcast`: run a closure once on every worker of a pool.
//!
//! Each worker slot has a queue of jobs that only its own worker may run; a worker looks
//! there after its own deque, also from inside a wait (so a worker that broadcasts and
//! waits runs its own share). A broadcast queues one job per worker and wakes each. A
//! worker inside [`crate::blocking`] runs its share when its blocking call returns (its
//! spare does not stand in for it here).

use std::marker::PhantomData;

use super::job::HeapJob;
use super::latch::{CountLatch, DoneLatch, Latch, WorkerLatch};
use super::par::Slots;
use super::registry::{current_registry, Registry};
use super::unwind::{catch, AbortIfPanic, FirstPanic};
use super::worker::WorkerThread;
use crate::sync::Arc;

/// Where a broadcast closure runs: which worker, out of how many.
pub struct BroadcastContext<'a> {
    index: usize,
    num_threads: usize,
    /// Tied to the call it was made for, and not `Send`, as in rayon.
    _marker: PhantomData<&'a mut dyn Fn()>,
}

impl BroadcastContext<'_> {
    /// Calls `f` with the context of worker `index` out of `num_threads`.
    pub(crate) fn with<R>(
        index: usize,
        num_threads: usize,
        f: impl FnOnce(BroadcastContext<'_>) -> R,
    ) -> R {
        f(BroadcastContext {
            index,
            num_threads,
            _marker: PhantomData,
        })
    }

    /// The index of the worker running this call (its [`crate::current_thread_index`]).
    #[inline]
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many workers the broadcast runs on: the pool's `num_threads`. Each index in
    /// `0..num_threads()` gets exactly one call.
    #[inline]
    pub fn num_threads(&self) -> usize {
        self.num_threads
    }
}

impl std::fmt::Debug for BroadcastContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastContext")
            .field("index", &self.index)
            .field("num_threads", &self.num_threads)
            .finish()
    }
}

/// Runs `op` once on every worker of the current pool (the installed one, else the
/// global pool) and returns the results in worker order. If some calls panic, the one
/// on the lowest-indexed worker is re-raised after all have finished.
///
/// ```
/// let pool = weft::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
/// let indices = pool.broadcast(|ctx| (ctx.index(), ctx.num_threads()));
/// assert_eq!(indices, [(0, 3), (1, 3), (2, 3)]);
/// ```
pub fn broadcast<OP, R>(op: OP) -> Vec<R>
where
    OP: Fn(BroadcastContext<'_>) -> R + Sync,
    R: Send,
{
    broadcast_on(&current_registry(), op)
}

/// Runs `op` once on every worker of the current pool without waiting for it; a panic
/// goes to the pool's panic handler, as for [`crate::spawn`].
pub fn spawn_broadcast<OP>(op: OP)
where
    OP: Fn(BroadcastContext<'_>) + Send + Sync + 'static,
{
    spawn_broadcast_on(&current_registry(), op)
}

/// [`broadcast`] on `registry`.
pub(crate) fn broadcast_on<OP, R>(registry: &Arc<Registry>, op: OP) -> Vec<R>
where
    OP: Fn(BroadcastContext<'_>) -> R + Sync,
    R: Send,
{
    registry.in_worker(|worker| broadcast_from(worker, &op))
}

/// Queues one job per worker and waits (as a `join` waits) until all have run.
fn broadcast_from<OP, R>(waiter: &WorkerThread, op: &OP) -> Vec<R>
where
    OP: Fn(BroadcastContext<'_>) -> R + Sync,
    R: Send,
{
    let registry = &waiter.registry;
    let num_threads = registry.num_threads;
    let results = Slots::new(num_threads);
    let first_panic = FirstPanic::new();
    let pending = CountLatch::new(DoneLatch::Worker(WorkerLatch::new(registry, waiter.index)));
    // Queued jobs borrow this frame: nothing may unwind out of it until they are done.
    let window = AbortIfPanic("a `broadcast`");
    for index in 0..num_threads {
        pending.increment();
        let (results, first_panic, pending) = (&results, &first_panic, &pending);
        let job = move || {
            match catch(|| BroadcastContext::with(index, num_threads, op)) {
                // SAFETY: each index gets one job, so nobody else writes slot `index`,
                // and the slots are read only once every job has set the latch.
                Ok(value) => unsafe { results.put(index, value) },
                Err(payload) => first_panic.offer(index, payload),
            }
            // SAFETY: `pending` lives until its count reaches zero (we wait below).
            unsafe { CountLatch::set(pending) };
        };
        // SAFETY: the job borrows from this frame, which waits for every job to finish.
        let job = unsafe { HeapJob::into_job_ref(job, super::context::Context::NONE) };
        registry.broadcast_to(index, job);
    }
    // SAFETY: `pending` is live; we wait on it below.
    unsafe { CountLatch::set(&pending) };
    let DoneLatch::Worker(latch) = &pending.latch else {
        unreachable!("a broadcast's latch belongs to its waiting worker")
    };
    waiter.wait_until(latch);
    window.disarm();
    if let Some(payload) = first_panic.take() {
        std::panic::resume_unwind(payload);
    }
    results.into_values()
}

/// [`spawn_broadcast`] on `registry`.
pub(crate) fn spawn_broadcast_on<OP>(registry: &Arc<Registry>, op: OP)
where
    OP: Fn(BroadcastContext<'_>) + Send + Sync + 'static,
{
    let op = Arc::new(op);
    let num_threads = registry.num_threads;
    for index in 0..num_threads {
        let (op, owner) = (Arc::clone(&op), Arc::clone(registry));
        let counted = Registry::spawned_job(registry);
        let job = move || {
            if let Err(payload) = catch(|| BroadcastContext::with(index, num_threads, &*op)) {
                owner.handle_panic(payload);
            }
            drop(counted);
        };
        // SAFETY: the job owns everything it uses (`'static`).
        let job = unsafe { HeapJob::into_job_ref(job, super::context::Context::NONE) };
        registry.broadcast_to(index, job);
    }
}
