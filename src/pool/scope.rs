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
use std::collections::VecDeque;
use std::marker::PhantomData;

use super::broadcast::BroadcastContext;
use super::context::{self, Context};
use super::job::{HeapJob, JobRef};
use super::latch::{CountLatch, DoneLatch, Latch, LockLatch, WorkerLatch};
use super::registry::{current_registry, global_registry, Registry};
use super::unwind::{catch, FirstPanic};
use super::worker::WorkerThread;
use crate::sync::atomic::{AtomicU32, Ordering};
use crate::sync::{Arc, Mutex};

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

/// A [`Scope`] whose jobs spawned with [`ScopeFifo::spawn_fifo`] start in the order
/// they were spawned (first in, first out) when one thread runs them, rather than
/// newest first. Created by [`scope_fifo`], [`in_place_scope_fifo`] or their
/// [`ThreadPool`](crate::ThreadPool) counterparts.
#[repr(transparent)]
pub struct ScopeFifo<'scope> {
    scope: Scope<'scope>,
}

/// What all handles of one scope share; lives on the stack of [`run_scope`].
struct ScopeState<'scope> {
    pending: CountLatch<'scope>,
    registry: &'scope Arc<Registry>,
    ctx: Context,
    /// The first panic in spawn order so far, with where it happened.
    first_panic: FirstPanic<Vec<u32>>,
    /// Jobs of `spawn_fifo` not started yet, oldest first.
    fifo: Mutex<VecDeque<JobRef>>,
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

/// [`scope`] whose body runs on the calling thread, which need not be a worker: `op`
/// need not be `Send`. Jobs spawned in it run on the current pool (the calling
/// worker's, else the global pool); the caller waits for them before returning.
///
/// ```
/// use std::cell::Cell;
/// let not_send = Cell::new(1); // a `Cell` reference is not `Send`
/// let mut doubled = 0;
/// weft::in_place_scope(|s| {
///     let value = not_send.get();
///     let doubled = &mut doubled;
///     s.spawn(move |_| *doubled = value * 2);
/// });
/// assert_eq!(doubled, 2);
/// ```
pub fn in_place_scope<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R,
{
    // SAFETY: null or this thread's live WorkerThread.
    match unsafe { WorkerThread::current().as_ref() } {
        Some(worker) => {
            // SAFETY: the worker holds its registry alive while it runs this frame.
            let registry: &'scope Arc<Registry> = unsafe { &*(&worker.registry as *const _) };
            run_scope(registry, Some(worker), op)
        }
        None => run_scope(global_registry(), None, op),
    }
}

/// [`scope`] whose jobs spawned with [`ScopeFifo::spawn_fifo`] start oldest first.
///
/// ```
/// let order = std::sync::Mutex::new(Vec::new());
/// let pool = weft::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
/// pool.scope_fifo(|s| {
///     for i in 0..4 {
///         let order = &order;
///         s.spawn_fifo(move |_| order.lock().unwrap().push(i));
///     }
/// });
/// assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
/// ```
pub fn scope_fifo<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&ScopeFifo<'scope>) -> R + Send,
    R: Send,
{
    scope(|s| op(ScopeFifo::view(s)))
}

/// [`in_place_scope`] whose jobs spawned with [`ScopeFifo::spawn_fifo`] start oldest
/// first.
pub fn in_place_scope_fifo<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&ScopeFifo<'scope>) -> R,
{
    in_place_scope(|s| op(ScopeFifo::view(s)))
}

/// Runs a scope on `registry`, its body on a worker of it.
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
        run_scope(registry, Some(worker), op)
    })
}

/// Runs a scope whose jobs go to `registry`, its body on the calling thread.
pub(crate) fn in_place_scope_on<'scope, OP, R>(registry: &Arc<Registry>, op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R,
{
    // SAFETY: the caller's `registry` outlives this call, which outlives the scope.
    let registry: &'scope Arc<Registry> = unsafe { &*(registry as *const _) };
    // SAFETY: null or this thread's live WorkerThread.
    run_scope(registry, unsafe { WorkerThread::current().as_ref() }, op)
}

/// The scope itself: `op` runs here; `waiter` (this thread's worker, of any pool, if it
/// is one) waits for the spawned jobs without holding its thread; a thread outside
/// every pool blocks.
fn run_scope<'scope, OP, R>(
    registry: &'scope Arc<Registry>,
    waiter: Option<&WorkerThread>,
    op: OP,
) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R,
{
    let done = match waiter {
        // SAFETY: the waiter's registry outlives its worker, which runs this frame
        // until the scope is over.
        Some(worker) => DoneLatch::Worker(WorkerLatch::new(
            unsafe { &*(&*worker.registry as *const Registry) },
            worker.index,
        )),
        None => DoneLatch::Thread(LockLatch::new()),
    };
    let state = ScopeState {
        pending: CountLatch::new(done),
        registry,
        ctx: context::current(),
        first_panic: FirstPanic::new(),
        fifo: Mutex::new(VecDeque::new()),
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
    match (&state.pending.latch, waiter) {
        (DoneLatch::Worker(latch), Some(worker)) => {
            let other_pool = !Arc::ptr_eq(&worker.registry, registry);
            if other_pool {
                // Another pool runs the jobs: this pool is not stalled meanwhile.
                worker.registry.external_wait_begin();
            }
            worker.wait_until(latch);
            if other_pool {
                worker.registry.external_wait_end();
            }
        }
        (DoneLatch::Thread(latch), _) => latch.wait(),
        (DoneLatch::Worker(_), None) => unreachable!("a worker latch has a worker"),
    }
    match (state.first_panic.take(), result) {
        (Some(payload), _) => std::panic::resume_unwind(payload),
        (None, Some(value)) => value,
        (None, None) => unreachable!("a panicking scope body records its panic"),
    }
}

impl<'scope> ScopeState<'scope> {
    /// Queues a job of this scope: on the spawning worker's deque if it belongs to the
    /// scope's pool, else on the pool's injector.
    fn push(&self, job: JobRef) {
        // SAFETY: null or this thread's live WorkerThread.
        match unsafe { WorkerThread::current().as_ref() } {
            Some(worker) if std::ptr::eq(&*worker.registry, &**self.registry) => worker.push(job),
            _ => self.registry.inject(job),
        }
    }
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
        let job = self.job_for(body);
        self.state().push(job);
    }

    /// Spawns `body` once on every worker of the scope's pool, each call with that
    /// worker's [`BroadcastContext`]; the scope waits for all of them.
    pub fn spawn_broadcast<F>(&self, body: F)
    where
        F: Fn(&Scope<'scope>, BroadcastContext<'_>) + Send + Sync + 'scope,
    {
        let state = self.state();
        let num_threads = state.registry.num_threads;
        let body = Arc::new(body);
        for index in 0..num_threads {
            let body = Arc::clone(&body);
            let job = self.job_for(move |scope| {
                BroadcastContext::with(index, num_threads, |ctx| body(scope, ctx))
            });
            state.registry.broadcast_to(index, job);
        }
    }

    /// The job that runs `body` as a spawn of this scope (counted in the scope's
    /// pending jobs from now on), not queued anywhere yet.
    fn job_for<F>(&self, body: F) -> JobRef
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
        unsafe { HeapJob::into_job_ref(job, state.ctx) }
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

impl<'scope> ScopeFifo<'scope> {
    /// The FIFO view of a scope (the same scope: only how jobs are spawned differs).
    pub(crate) fn view<'a>(scope: &'a Scope<'scope>) -> &'a ScopeFifo<'scope> {
        // SAFETY: `ScopeFifo` is a `repr(transparent)` wrapper of `Scope`.
        unsafe { &*(scope as *const Scope<'scope> as *const ScopeFifo<'scope>) }
    }

    /// Spawns `body` into the scope, like [`Scope::spawn`], except that jobs spawned
    /// this way start oldest first: each spawn queues its job in the scope's FIFO and
    /// pushes a stand-in that runs the oldest queued job, wherever it runs.
    pub fn spawn_fifo<F>(&self, body: F)
    where
        F: FnOnce(&ScopeFifo<'scope>) + Send + 'scope,
    {
        let scope = &self.scope;
        let job = scope.job_for(move |scope| body(ScopeFifo::view(scope)));
        let state = scope.state();
        state.fifo.lock().push_back(job);
        let state_ref = StateRef(scope.state);
        let stand_in = move || {
            let state_ref = state_ref;
            // SAFETY: the queued job this stand-in accounts for keeps the scope alive
            // until it has run, and we touch the state only before running a job.
            let state = unsafe { &*state_ref.0 };
            let job = state.fifo.lock().pop_front();
            let job = job.expect("a FIFO stand-in finds the job it was pushed for");
            // SAFETY: popped from the FIFO by this thread alone; it has not run.
            unsafe { job.execute() };
        };
        // SAFETY: the stand-in only touches the scope's state, which outlives it (above).
        let stand_in = unsafe { HeapJob::into_job_ref(stand_in, state.ctx) };
        state.push(stand_in);
    }

    /// [`Scope::spawn_broadcast`] for a FIFO scope.
    pub fn spawn_broadcast<F>(&self, body: F)
    where
        F: Fn(&ScopeFifo<'scope>, BroadcastContext<'_>) + Send + Sync + 'scope,
    {
        self.scope
            .spawn_broadcast(move |scope, ctx| body(ScopeFifo::view(scope), ctx));
    }
}
