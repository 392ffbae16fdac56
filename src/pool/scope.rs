//! `scope`: spawn any number of jobs that may borrow from the enclosing stack frame.
//!
//! A scope counts its pending jobs in a [`CountLatch`] that starts at one for the scope's
//! own body. Each spawn adds one; each finished job (and the body) takes one away; the
//! scope returns only when the count reaches zero, which is what makes borrowing sound.
//! Spawned jobs carry the context that was current when the scope was created, so they
//! never outlive it.

use std::any::Any;
use std::marker::PhantomData;

use super::context::{self, Context};
use super::job::{catch, HeapJob};
use super::latch::{CountLatch, Latch};
use super::registry::{current_registry, Registry};
use super::worker::WorkerThread;
use crate::sync::{Arc, Mutex};

/// A scope in which jobs borrowing from the enclosing frame can be spawned.
///
/// Created by [`scope`] or [`ThreadPool::scope`](crate::ThreadPool::scope).
pub struct Scope<'scope> {
    pending: CountLatch<'scope>,
    registry: &'scope Arc<Registry>,
    ctx: Context,
    first_panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// Invariant in `'scope`, as borrowed data must be.
    marker: PhantomData<fn(&'scope ()) -> &'scope ()>,
}

/// Creates a scope, runs `op` in it on the current pool, and waits for every job spawned
/// in it before returning `op`'s result.
///
/// If `op` or any spawned job panics, the first panic is re-raised here after all jobs
/// have finished.
///
/// ```
/// let mut totals = [0u64; 3];
/// weft::scope(|s| {
///     for (i, total) in totals.iter_mut().enumerate() {
///         s.spawn(move |_| *total = (0..=i as u64 * 100).sum());
///     }
/// });
/// assert_eq!(totals, [0, 5050, 20100]);
/// ```
pub fn scope<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R + Send,
    R: Send,
{
    in_scope_on(&current_registry(), op)
}

/// Runs a scope on `registry`.
pub(crate) fn in_scope_on<'scope, OP, R>(registry: &Arc<Registry>, op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R + Send,
    R: Send,
{
    registry.in_worker(|worker| {
        // SAFETY: `registry` outlives the scope: this function does not return before
        // every job of the scope has finished. Extending the borrow to `'scope` lets
        // spawned jobs name it.
        let registry: &'scope Arc<Registry> = unsafe { &*(&worker.registry as *const _) };
        let scope = Scope {
            pending: CountLatch::new(registry, worker.index),
            registry,
            ctx: context::current(),
            first_panic: Mutex::new(None),
            marker: PhantomData,
        };
        let result = catch(|| op(&scope));
        let result = match result {
            Ok(value) => Some(value),
            Err(payload) => {
                scope.record_panic(payload);
                None
            }
        };
        scope.finish(worker);
        let first_panic = scope.first_panic.lock().take();
        match (first_panic, result) {
            (Some(payload), _) => std::panic::resume_unwind(payload),
            (None, Some(value)) => value,
            (None, None) => unreachable!("a panicking scope body records its panic"),
        }
    })
}

impl<'scope> Scope<'scope> {
    /// Spawns `body` into the scope. It may run on any worker of the pool, and may spawn
    /// more jobs into the same scope through the reference it receives.
    pub fn spawn<F>(&self, body: F)
    where
        F: FnOnce(&Scope<'scope>) + Send + 'scope,
    {
        self.pending.increment();
        let scope = ScopeRef(self);
        let job = move || {
            let scope = scope;
            // SAFETY: the scope waits for its pending count, which includes this job,
            // to reach zero before it is dropped.
            let this = unsafe { &*scope.0 };
            if let Err(payload) = catch(|| body(this)) {
                this.record_panic(payload);
            }
            // SAFETY: `pending` is live until it reaches zero, which this may cause.
            unsafe { CountLatch::set(&this.pending) };
        };
        // SAFETY: everything the job borrows lives for `'scope`, and the scope outlives
        // the job (above).
        let job = unsafe { HeapJob::into_job_ref(job, self.ctx) };
        // SAFETY: null or this thread's live WorkerThread.
        match unsafe { WorkerThread::current().as_ref() } {
            Some(worker) if std::ptr::eq(&*worker.registry, &**self.registry) => worker.push(job),
            _ => self.registry.inject(job),
        }
    }

    fn record_panic(&self, payload: Box<dyn Any + Send>) {
        let mut first = self.first_panic.lock();
        if first.is_none() {
            *first = Some(payload);
        }
    }

    /// Marks the body done and waits for every spawned job.
    fn finish(&self, worker: &WorkerThread) {
        // SAFETY: `pending` is live; we keep waiting on it below.
        unsafe { CountLatch::set(&self.pending) };
        worker.wait_until(&self.pending.latch, &|| None);
    }
}

/// A pointer to a scope that spawned jobs carry to another thread.
struct ScopeRef<'scope>(*const Scope<'scope>);
// SAFETY: `Scope` is `Sync` (its fields are thread-safe) and outlives its jobs.
unsafe impl Send for ScopeRef<'_> {}
