//! `spawn`: fire-and-forget jobs with no borrowed data.

use super::context::Context;
use super::job::HeapJob;
use super::registry::{current_registry, Registry};
use super::unwind::catch;
use super::worker::WorkerThread;
use crate::sync::Arc;

/// Runs `body` on the current pool (the installed one, else the global pool) without
/// waiting for it.
///
/// A panic in `body` goes to the pool's panic handler (by default the standard panic
/// hook has printed it and the worker carries on). Spawned jobs carry no context: they
/// are not part of whatever query spawned them.
///
/// ```
/// let (tx, rx) = std::sync::mpsc::channel();
/// weft::spawn(move || tx.send(6 * 7).unwrap());
/// assert_eq!(rx.recv().unwrap(), 42);
/// ```
pub fn spawn<F>(body: F)
where
    F: FnOnce() + Send + 'static,
{
    spawn_on(&current_registry(), body)
}

pub(crate) fn spawn_on<F>(registry: &Arc<Registry>, body: F)
where
    F: FnOnce() + Send + 'static,
{
    let owner = Arc::clone(registry);
    let job = move || {
        if let Err(payload) = catch(body) {
            owner.handle_panic(payload);
        }
    };
    // SAFETY: the job owns everything it uses (`'static`).
    let job = unsafe { HeapJob::into_job_ref(job, Context::NONE) };
    // SAFETY: null or this thread's live WorkerThread.
    match unsafe { WorkerThread::current().as_ref() } {
        Some(worker) if std::ptr::eq(&*worker.registry, &**registry) => worker.push(job),
        _ => registry.inject(job),
    }
}
