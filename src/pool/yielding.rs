//! `yield_now` and `yield_local`: let a worker run other jobs from inside a job.

use super::registry::Registry;
use super::worker::WorkerThread;

/// What [`yield_now`] or [`yield_local`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Yield {
    /// Another job ran (to completion, or until it suspended on a wait).
    Executed,
    /// There was no job to run.
    Idle,
}

/// Runs one pending job of the current pool, if any (this worker's own first, then
/// one taken from another worker or the injector), on top of the caller's frame, and
/// returns. `None` if the current thread is not a worker.
///
/// Useful to a job that polls for a condition another job sets. The job run here may
/// wait itself; the caller then continues when that wait is over. On a pool of one
/// thread, `join` runs its halves in order, so a first half cannot poll for its own
/// second half this way (on larger pools it can).
pub fn yield_now() -> Option<Yield> {
    // SAFETY: null or this thread's live WorkerThread.
    unsafe { WorkerThread::current().as_ref() }.map(|worker| run_one(worker, false))
}

/// Like [`yield_now`], but only runs a job of this worker's own (its deque, or one
/// broadcast to it), never one taken from another worker.
pub fn yield_local() -> Option<Yield> {
    // SAFETY: null or this thread's live WorkerThread.
    unsafe { WorkerThread::current().as_ref() }.map(|worker| run_one(worker, true))
}

/// True if the current worker has jobs of its own not started yet; `None` outside a
/// pool.
pub fn current_thread_has_pending_tasks() -> Option<bool> {
    // SAFETY: null or this thread's live WorkerThread.
    unsafe { WorkerThread::current().as_ref() }.map(WorkerThread::has_pending_tasks)
}

/// The current worker if it belongs to `registry` (borrowed no longer than the
/// registry: the worker outlives every call that could use it).
pub(crate) fn worker_of(registry: &Registry) -> Option<&WorkerThread> {
    // SAFETY: null or this thread's live WorkerThread, which lives while this thread
    // runs pool code, i.e. for the whole call holding the returned borrow.
    unsafe { WorkerThread::current().as_ref() }
        .filter(|worker| std::ptr::eq(&*worker.registry, registry))
}

/// Runs one job found by `worker` (its own only if `local`).
pub(crate) fn run_one(worker: &WorkerThread, local: bool) -> Yield {
    // The halves this worker keeps private are its own pending jobs too: a first half
    // that polls with `yield_now` may wait for its own second half (rayon, which pushes
    // every half, runs it here).
    worker.expose_hidden();
    let job = if local {
        worker.find_local_work()
    } else {
        worker.find_work()
    };
    match job {
        Some(job) => {
            // SAFETY: the job was just taken from a queue by this worker.
            unsafe { worker.execute(job) };
            Yield::Executed
        }
        None => Yield::Idle,
    }
}
