//! The work-stealing scheduler.
//!
//! Files in the order a job lives through them: `builder` (configuring a pool),
//! `registry` (shared state, spare threads), `job` and `latch` (what sits in a deque and
//! how completion is signalled), `worker` (the loop and waits), `fiber` (suspended waits), `sleep`
//! (idle workers), `context` (what a job works for), then the entry points `join`,
//! `scope`, `spawn` and `par`.

mod broadcast;
mod builder;
mod compat;
pub mod context;
mod fiber;
mod half;
mod job;
mod join;
mod latch;
mod par;
mod queue;
pub(crate) mod registry;
mod scope;
mod sleep;
mod snatch;
mod spawn;
mod tokens;
mod unwind;
mod worker;
mod yielding;

pub use broadcast::{broadcast, spawn_broadcast, BroadcastContext};
pub use builder::{
    max_num_threads, ThreadPool, ThreadPoolBuildError, ThreadPoolBuilder, DEFAULT_MAX_SPARES,
    DEFAULT_STACK_SIZE, MAX_NUM_THREADS,
};
#[allow(deprecated)]
pub use compat::{initialize, Configuration};
pub(crate) use join::combine;
pub use join::{join, join_context, FnContext};
pub(crate) use latch::{Latch, WorkerLatch};
pub(crate) use par::each_item;
pub use par::{par_for_each, par_map};
pub use registry::{PoolStats, ThreadBuilder};
pub use scope::{in_place_scope, in_place_scope_fifo, scope, scope_fifo, Scope, ScopeFifo};
pub use spawn::{spawn, spawn_fifo};
pub use yielding::{current_thread_has_pending_tasks, yield_local, yield_now, Yield};

#[cfg(loom)]
pub use tokens::ModelJobserver;
pub(crate) use unwind::{catch, drop_payload, panic_text, FirstPanic};
pub(crate) use worker::WorkerThread;

use registry::global_registry;

/// The number of threads of the current pool: the one whose worker calls this, else the
/// global pool.
pub fn current_num_threads() -> usize {
    // SAFETY: null or this thread's live WorkerThread.
    match unsafe { WorkerThread::current().as_ref() } {
        Some(worker) => worker.registry.num_threads,
        None => global_registry().num_threads,
    }
}

/// Exposes the current worker's private `join` halves if some worker looks for work.
pub(crate) fn expose_if_hungry() {
    // SAFETY: null or this thread's live WorkerThread.
    if let Some(worker) = unsafe { WorkerThread::current().as_ref() } {
        worker.expose_if_hungry();
    }
}

/// The index of the current thread in its pool, or `None` outside any pool.
///
/// Always below [`current_num_threads`], as in rayon. A spare thread, started while a
/// worker is inside [`blocking`], reports the index of the worker it stands in for:
/// while that worker's blocking call runs, two threads share the index.
pub fn current_thread_index() -> Option<usize> {
    WorkerThread::current_index()
}

/// Runs `f`, which is about to block this thread outside the pool's knowledge (a lock,
/// I/O, a channel), with the current worker counted as blocked: the worker hands its
/// queued jobs to a spare thread that stands in for it until `f` returns (one per
/// blocked worker, up to the pool's `max_threads`), so blocking costs no parallelism.
/// It nests: a `blocking` inside another counts once. Waits inside `f` block the thread
/// too (no fiber switch). Outside a pool it just runs `f`.
///
/// This is the one wait that holds a thread: waits on queries, joins, scopes and other
/// pools suspend fibers instead, and need no `blocking`.
///
/// Two things a blocking call must not wait for, since only this thread could run
/// them: on a one-thread pool, the other half of the `join` it runs in (such a pool
/// runs a `join`'s halves in order; `spawn` or `scope` the work instead, or use two
/// threads); and a query whose computation this thread suspended earlier (waits inside
/// `f` block the thread, and a suspended computation resumes only on its own thread).
///
/// ```
/// let pool = weft::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
/// let (tx, rx) = std::sync::mpsc::channel::<u32>();
/// pool.install(move || {
///     // The only worker blocks; a spare runs the job that unblocks it.
///     weft::spawn(move || tx.send(7).unwrap());
///     assert_eq!(weft::blocking(|| rx.recv().unwrap()), 7);
/// });
/// ```
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: null or this thread's live WorkerThread.
    match unsafe { WorkerThread::current().as_ref() } {
        Some(worker) => {
            let _span = (worker.registry.trace).span(worker.index, || {
                crate::trace::SpanKind::Blocked(crate::trace::BlockedOn::Blocking)
            });
            worker.blocked(f)
        }
        None => f(),
    }
}
