//! `spawn`: fire-and-forget jobs with no borrowed data.

use super::context::Context;
use super::job::{HeapJob, JobRef};
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
    queue_on(registry, spawn_job(registry, body));
}

/// Like [`spawn`], except that jobs spawned with `spawn_fifo` start oldest first
/// (rather than newest first) when one thread runs them: each queues its job in the
/// pool's FIFO and pushes a stand-in that runs the oldest queued job.
///
/// ```
/// let pool = weft::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
/// let (tx, rx) = std::sync::mpsc::channel();
/// pool.install(|| {
///     for i in 0..3 {
///         let tx = tx.clone();
///         weft::spawn_fifo(move || tx.send(i).unwrap());
///     }
/// });
/// drop(tx);
/// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
/// ```
pub fn spawn_fifo<F>(body: F)
where
    F: FnOnce() + Send + 'static,
{
    spawn_fifo_on(&current_registry(), body)
}

pub(crate) fn spawn_fifo_on<F>(registry: &Arc<Registry>, body: F)
where
    F: FnOnce() + Send + 'static,
{
    registry.fifo.lock().push_back(spawn_job(registry, body));
    let owner = Arc::clone(registry);
    let stand_in = move || {
        let job = owner.fifo.lock().pop_front();
        let job = job.expect("a FIFO stand-in finds the job it was pushed for");
        // SAFETY: popped from the FIFO by this thread alone; it has not run.
        unsafe { job.execute() };
    };
    // SAFETY: the stand-in owns everything it uses (`'static`).
    queue_on(registry, unsafe {
        HeapJob::into_job_ref(stand_in, Context::NONE)
    });
}

/// The job that runs `body` and hands a panic to `registry`'s panic handler.
fn spawn_job<F>(registry: &Arc<Registry>, body: F) -> JobRef
where
    F: FnOnce() + Send + 'static,
{
    let owner = Arc::clone(registry);
    let counted = Registry::spawned_job(registry);
    let job = move || {
        if let Err(payload) = catch(body) {
            owner.handle_panic(payload);
        }
        drop(counted);
    };
    // SAFETY: the job owns everything it uses (`'static`).
    unsafe { HeapJob::into_job_ref(job, Context::NONE) }
}

/// Queues `job` on the current worker's deque if it belongs to `registry`, else on
/// `registry`'s injector.
fn queue_on(registry: &Arc<Registry>, job: JobRef) {
    // SAFETY: null or this thread's live WorkerThread.
    match unsafe { WorkerThread::current().as_ref() } {
        Some(worker) if std::ptr::eq(&*worker.registry, &**registry) => worker.push(job),
        _ => registry.inject(job),
    }
}
