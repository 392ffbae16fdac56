//! `scope`: spawn any number of jobs that may borrow from the enclosing stack frame.
//!
//! A scope counts its pending jobs in a [`CountLatch`] that starts at one for the scope's
//! own body. Each spawn adds one; each finished job (and the body) takes one away; the
//! scope returns only when the count reaches zero, which is what makes borrowing sound.
//! Spawned jobs carry the context that was current when the scope was created, so they
//! never outlive it.
//!
//! **Which panic wins.** When several jobs panic, the scope re-raises the first in
//! *spawn order*, not in time: the order in which a serial run (each spawn running at
//! once, to completion) would meet them. Every job knows its place in the tree of
//! spawns ([`SpawnPos`]), and a panic is placed after the spawns its job made before
//! panicking, so the choice is the same at every thread count and in the serial query
//! engine.

use std::any::Any;
use std::marker::PhantomData;

use super::context::{self, Context};
use super::job::HeapJob;
use super::latch::{CountLatch, Latch};
use super::registry::{current_registry, Registry};
use super::unwind::{catch, FirstPanic};
use super::worker::WorkerThread;
use crate::sync::atomic::{AtomicU32, Ordering};
use crate::sync::Arc;

/// A handle to a scope in which jobs borrowing from the enclosing frame can be spawned.
///
/// Created by [`scope`] or [`ThreadPool::scope`](crate::ThreadPool::scope); each spawned
/// job gets a handle of its own to the same scope.
pub struct Scope<'scope> {
    state: *const ScopeState<'scope>,
    /// The job this handle was given to (`None` for the scope's body).
    pos: Option<Arc<SpawnPos>>,
    /// Spawns made through this handle so far.
    spawned: AtomicU32,
    /// Invariant in `'scope`, as borrowed data must be.
    marker: PhantomData<fn(&'scope ()) -> &'scope ()>,
}

// SAFETY: `state` points to the scope's state, which is `Sync` and outlives every handle
// (the scope waits for all its jobs); the other fields are thread-safe.
unsafe impl Send for Scope<'_> {}
// SAFETY: as above.
unsafe impl Sync for Scope<'_> {}

/// What all handles of one scope share; lives on the stack of [`in_scope_on`].
struct ScopeState<'scope> {
    pending: CountLatch<'scope>,
    registry: &'scope Arc<Registry>,
    ctx: Context,
    /// The first panic in spawn order so far, with where it happened.
    first_panic: FirstPanic<Vec<u32>>,
}

/// A spawned job's place in the tree of spawns: the `index`-th spawn of its parent.
struct SpawnPos {
    parent: Option<Arc<SpawnPos>>,
    index: u32,
}

/// Creates a scope, runs `op` in it on the current pool, and waits for every job spawned
/// in it before returning `op`'s result.
///
/// If `op` or any spawned job panics, the first panic in spawn order (see the module
/// docs) is re-raised here after all jobs have finished.
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
        let state = ScopeState {
            pending: CountLatch::new(registry, worker.index),
            registry,
            ctx: context::current(),
            first_panic: FirstPanic::new(),
        };
        let body = Scope::handle(&state, None);
        let result = match catch(|| op(&body)) {
            Ok(value) => Some(value),
            Err(payload) => {
                body.record_panic(payload);
                None
            }
        };
        // SAFETY: `pending` is live; we keep waiting on it below.
        unsafe { CountLatch::set(&state.pending) };
        worker.wait_until(&state.pending.latch);
        match (state.first_panic.take(), result) {
            (Some(payload), _) => std::panic::resume_unwind(payload),
            (None, Some(value)) => value,
            (None, None) => unreachable!("a panicking scope body records its panic"),
        }
    })
}

impl<'scope> Scope<'scope> {
    fn handle(state: &ScopeState<'scope>, pos: Option<Arc<SpawnPos>>) -> Self {
        Scope {
            state,
            pos,
            spawned: AtomicU32::new(0),
            marker: PhantomData,
        }
    }

    fn state(&self) -> &ScopeState<'scope> {
        // SAFETY: the state outlives every handle (see the `Send` impl).
        unsafe { &*self.state }
    }

    /// Spawns `body` into the scope. It may run on any worker of the pool, and may spawn
    /// more jobs into the same scope through the handle it receives.
    pub fn spawn<F>(&self, body: F)
    where
        F: FnOnce(&Scope<'scope>) + Send + 'scope,
    {
        let state = self.state();
        state.pending.increment();
        let pos = Arc::new(SpawnPos {
            parent: self.pos.clone(),
            index: self.spawned.fetch_add(1, Ordering::Relaxed),
        });
        let state_ref = StateRef(self.state);
        let job = move || {
            let state_ref = state_ref;
            // SAFETY: the scope waits for its pending count, which includes this job,
            // to reach zero before its state is dropped.
            let state = unsafe { &*state_ref.0 };
            let handle = Scope::handle(state, Some(pos));
            if let Err(payload) = catch(|| body(&handle)) {
                handle.record_panic(payload);
            }
            drop(handle);
            // SAFETY: `pending` is live until it reaches zero, which this may cause.
            unsafe { CountLatch::set(&state.pending) };
        };
        // SAFETY: everything the job borrows lives for `'scope`, and the scope outlives
        // the job (above).
        let job = unsafe { HeapJob::into_job_ref(job, state.ctx) };
        // SAFETY: null or this thread's live WorkerThread.
        match unsafe { WorkerThread::current().as_ref() } {
            Some(worker) if std::ptr::eq(&*worker.registry, &**state.registry) => worker.push(job),
            _ => state.registry.inject(job),
        }
    }

    /// Keeps `payload` if it is the first panic in spawn order so far.
    fn record_panic(&self, payload: Box<dyn Any + Send>) {
        self.state().first_panic.offer(self.panic_path(), payload);
    }

    /// Where a panic of this handle's job sorts: after its spawns made so far, before
    /// the ones it would have made next.
    fn panic_path(&self) -> Vec<u32> {
        let mut path = vec![self.spawned.load(Ordering::Relaxed)];
        let mut pos = self.pos.as_deref();
        while let Some(p) = pos {
            path.push(p.index);
            pos = p.parent.as_deref();
        }
        path.reverse();
        path
    }
}

/// A pointer to a scope's state that spawned jobs carry to another thread.
struct StateRef<'scope>(*const ScopeState<'scope>);
// SAFETY: `ScopeState` is `Sync` (its fields are thread-safe) and outlives its jobs.
unsafe impl Send for StateRef<'_> {}
