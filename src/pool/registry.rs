//! The registry: a pool's shared state (deques, injector, sleep, spare threads).
//!
//! A pool has `max_threads` slots. Slots `0..num_threads` get a thread when the pool is
//! built; the others are *spares*, started only when a worker blocks.
//!
//! Spare protocol (all under the `spares` mutex, which is off every hot path):
//!
//! - `runnable = live - blocked - parked`: threads that can run jobs now or after a
//!   wake-up. A worker that enters a blocking wait ([`Registry::enter_blocked`]) counts as
//!   blocked; if that leaves fewer than `num_threads` runnable, a parked spare is woken
//!   or, below `max_threads`, a new spare thread is started.
//! - A spare (slot `>= num_threads`) that runs out of work while more than `num_threads`
//!   are runnable parks itself in `parked` until a blocker needs it again, so running
//!   threads return to `num_threads` once the blocked ones resume. Parked spares use no
//!   CPU; their threads exit when the pool is dropped.

use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::sync::Weak;

use crossbeam_utils::CachePadded;

use super::builder::ThreadNames;
use super::fiber::ReadyFibers;
use super::half::HiddenJob;
use super::job::{JobRef, StackJob};
use super::latch::{LockLatch, WorkerLatch};
use super::queue::FlaggedQueue;
use super::sleep::{Parker, Sleep};
use super::snatch::PrivateHalves;
use super::tokens::TokenPool;
use super::unwind::{catch, drop_payload, AbortIfPanic};
use super::worker::{self, WorkerThread};
use crate::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use crate::sync::deque::{Injector, Stealer, Worker};
use crate::sync::{thread, Arc, Condvar, Mutex, OnceLock};
use crate::trace::{MarkKind, Tracer};

/// Called with the payload of a panic in a `spawn`ed job.
pub(crate) type PanicHandler = dyn Fn(Box<dyn Any + Send>) + Send + Sync;
/// Names a worker thread from its index (called at build time only).
pub(crate) type ThreadNamer = dyn FnMut(usize) -> String;
/// Called with a worker's index when its thread starts or exits.
pub(crate) type ThreadHook = dyn Fn(usize) + Send + Sync;

/// Everything the builder decided.
pub(crate) struct PoolConfig {
    pub(crate) num_threads: usize,
    pub(crate) max_threads: usize,
    pub(crate) stack_size: Option<usize>,
    /// The name of every slot's thread, decided at build time (so a panicking namer
    /// fails `build` instead of unwinding out of a wait that has published a job).
    pub(crate) thread_names: ThreadNames,
    pub(crate) panic_handler: Option<Box<PanicHandler>>,
    pub(crate) start_handler: Option<Box<ThreadHook>>,
    pub(crate) exit_handler: Option<Box<ThreadHook>>,
    /// Workers take their own jobs oldest first (rayon's deprecated `breadth_first`).
    pub(crate) breadth_first: bool,
    /// The building thread becomes worker 0 (rayon's `use_current_thread`).
    pub(crate) adopt_current_thread: bool,
    pub(crate) tokens: TokenPool,
    pub(crate) trace: bool,
}

/// A spawned job's place in [`Registry::may_exit`]'s count: dropping it (the job ran,
/// panicked or was dropped unrun) releases the place, and the last one in a dropped
/// pool wakes its sleeping workers so they exit.
pub(crate) struct SpawnedJob(Arc<Registry>);

impl Drop for SpawnedJob {
    fn drop(&mut self) {
        let registry = &self.0;
        let last = registry.spawned.fetch_sub(1, Ordering::SeqCst) == 1;
        // Pairs with the fence in `may_exit`: a worker that still saw this job counted
        // had loaded `terminating` set before its fence, so this load sees it set too,
        // and the unpark below reaches that worker's park (a pending unpark is kept).
        fence(Ordering::SeqCst);
        if last && registry.terminating() && !crate::sync::mutant("last_spawn_wakes_nobody") {
            for slot in registry.started_slots() {
                slot.parker.unpark();
            }
        }
    }
}

pub(crate) struct Slot {
    /// Thieves' end of the deque of the slot's thread, once started.
    pub(crate) stealer: OnceLock<Stealer<JobRef>>,
    pub(crate) parker: Parker,
    /// Fibers of this slot's worker whose wait is over (see `fiber.rs`).
    pub(crate) ready: ReadyFibers,
    /// Set when a wait of this slot's sleeping worker ended, until the worker is up:
    /// the pool is not stalled while a woken worker has yet to run.
    pub(crate) woken: AtomicBool,
    /// Jobs handed to this slot's spare by the worker it stands in for, oldest first.
    handoff: Mutex<Vec<JobRef>>,
    has_handoff: AtomicBool,
    /// A `join` half the slot's worker keeps private, for an idle worker to claim (see
    /// `HiddenJob`); null if none.
    /// On a line of its own: every `join` of the slot's worker reads it, and the
    /// other fields here are written by other workers (waking fibers, handing off).
    pub(crate) published: CachePadded<AtomicPtr<HiddenJob>>,
    /// The `join` halves the slot's worker keeps private (see `snatch.rs`). On a line
    /// of its own: its worker writes it at every `join`, others read it when idle.
    pub(crate) private: CachePadded<PrivateHalves>,
    /// Jobs that only this slot's worker may run (`broadcast`), oldest first.
    broadcasts: FlaggedQueue<JobRef>,
    /// For a spare: the index of the worker it last stood in for, which is what
    /// `current_thread_index` reports on it (rayon's indices stay below
    /// `current_num_threads`).
    stands_in_for: AtomicUsize,
}

/// True while the slot's worker has been woken from its wait and is not up yet.
fn slot_woken(slot: &Slot) -> bool {
    // The mutant (loom builds only) forgets such workers.
    slot.woken.load(Ordering::SeqCst) && !crate::sync::mutant("stall_ignores_woken")
}

impl Slot {
    /// Claims the half published in this slot, if any: the caller runs it.
    pub(crate) fn claim_published(&self) -> Option<JobRef> {
        let node = self.published.load(Ordering::Acquire);
        if node.is_null() {
            return None;
        }
        self.published
            .compare_exchange(
                node,
                std::ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .ok()
            // SAFETY: our CAS took the published node out of the slot.
            .map(|node| unsafe { HiddenJob::claimed_job(node) })
    }

    /// The oldest job broadcast to this slot's worker, if any.
    pub(crate) fn take_broadcast(&self) -> Option<JobRef> {
        self.broadcasts.pop()
    }

    fn give_handoff(&self, jobs: Vec<JobRef>) {
        if jobs.is_empty() {
            return;
        }
        self.handoff.lock().extend(jobs);
        self.has_handoff.store(true, Ordering::Release);
    }

    /// The jobs handed to this slot's thread, oldest first (see `Registry::hand_off`).
    pub(crate) fn take_handoff(&self) -> Vec<JobRef> {
        if !self.has_handoff.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *self.handoff.lock())
    }
}

#[derive(Default)]
struct SpareState {
    live: usize,
    blocked: usize,
    parked: Vec<usize>,
    unstarted: Vec<usize>,
    peak_live: usize,
    peak_blocked: usize,
    /// Workers asleep for lack of anything to run (see [`Registry::enter_idle`]).
    idle: usize,
    /// Waits of this pool's workers that another pool will end (a cross-pool
    /// `install`, a query computed on another pool).
    external_waits: usize,
}

impl SpareState {
    fn runnable(&self) -> usize {
        self.live - self.blocked - self.parked.len()
    }
}

/// How a spare's attempt to park ended.
pub(crate) enum SpareOutcome {
    /// Not surplus: the caller stays a regular worker.
    Needed,
    /// Parked, then woken because a blocker needed it.
    Resumed,
    /// The pool is shutting down.
    Terminated,
}

/// A snapshot of a pool's thread counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Worker threads started and not exited (parked spares included).
    pub live_threads: usize,
    /// Workers currently in a blocking wait.
    pub blocked: usize,
    /// Spares parked because they were not needed.
    pub parked_spares: usize,
    /// The most worker threads ever alive at once.
    pub peak_live_threads: usize,
    /// The most workers ever blocked at once.
    pub peak_blocked: usize,
    /// Workers running now (each holds the implicit token or a jobserver token).
    pub running: usize,
    /// The most workers ever running at once.
    pub peak_running: usize,
    /// Jobserver tokens acquired and not yet returned (the implicit one not counted).
    pub tokens_held: usize,
    /// The most jobserver tokens ever held at once.
    pub peak_tokens_held: usize,
}

pub(crate) struct Registry {
    /// One per thread the pool may have; see [`Registry::started_slots`].
    pub(crate) slots: Box<[Slot]>,
    /// How many slots have had their thread started (a prefix of `slots`).
    started: AtomicUsize,
    pub(crate) injector: Injector<JobRef>,
    /// Written whenever work is pushed or a worker sleeps: kept off the lines of the
    /// read-mostly fields (`num_threads`, `slots`) that every `join` reads.
    pub(crate) sleep: CachePadded<Sleep>,
    pub(crate) num_threads: usize,
    pub(crate) max_threads: usize,
    /// Workers searching for work (not those asleep: see `worker.rs`). `join` pushes
    /// its second half for thieves only while this is non-zero.
    /// On a line of its own, like the other fields written while the pool runs.
    pub(crate) hungry: CachePadded<AtomicUsize>,
    spares: CachePadded<Mutex<SpareState>>,
    /// Signalled when the last worker exits.
    exited: Condvar,
    /// The threads weft started itself (not through a `spawn_handler`), for
    /// `ThreadPool::shutdown` to join.
    handles: Mutex<Vec<thread::JoinHandle<()>>>,
    terminating: AtomicBool,
    /// Spawned jobs (`spawn`, `spawn_fifo`, `spawn_broadcast`) not yet finished: a
    /// dropped pool's workers stay until these are done, since a spawned job may wait
    /// (behind weft's back) for work it queued, which only another worker can run.
    spawned: AtomicUsize,
    stack_size: Option<usize>,
    /// The stack size of this pool's fibers (as deep as a worker's own).
    pub(crate) fiber_stack_size: usize,
    thread_names: ThreadNames,
    panic_handler: Option<Box<PanicHandler>>,
    start_handler: Option<Box<ThreadHook>>,
    exit_handler: Option<Box<ThreadHook>>,
    breadth_first: bool,
    /// Worker 0 is the thread that built the pool, adopted for good (see
    /// `worker::adopt_current_thread`): it never exits, so it is not waited for.
    adopted: bool,
    /// Jobs of `spawn_fifo` not started yet, oldest first (see `spawn.rs`).
    pub(crate) fifo: CachePadded<Mutex<VecDeque<JobRef>>>,
    pub(crate) tokens: CachePadded<TokenPool>,
    /// What the workers record when tracing is on.
    pub(crate) trace: Tracer,
    /// Told when the pool stalls (see [`Registry::enter_idle`]). Plain `std` weak
    /// references: registration is bookkeeping, not a protocol the models explore.
    stall_listeners: Mutex<Vec<Weak<dyn StallListener>>>,
}

/// Something to tell when a pool can run nothing any more (the query engine's wait
/// graph, which then releases the requests blocked there with a deadlock report).
pub(crate) trait StallListener: Send + Sync {
    /// `registry` is stalled.
    fn pool_stalled(&self, registry: &Registry);
}

/// Starts a worker's thread: the pool's own way, or a user's spawn handler (see
/// `ThreadBuilder`).
pub(crate) type Spawner<'a> = &'a mut dyn FnMut(ThreadBuilder) -> io::Result<()>;

impl Registry {
    /// Builds the registry and starts its `num_threads` workers, through `spawner` if
    /// given (a pool with a spawn handler starts no spares: its `max_threads` is its
    /// `num_threads`).
    pub(crate) fn new(
        config: PoolConfig,
        mut spawner: Option<Spawner<'_>>,
    ) -> io::Result<Arc<Registry>> {
        let slots: Box<[Slot]> = (0..config.max_threads)
            .map(|_| Slot {
                stealer: OnceLock::new(),
                parker: Parker::new(),
                ready: ReadyFibers::new(),
                woken: AtomicBool::new(false),
                handoff: Mutex::new(Vec::new()),
                has_handoff: AtomicBool::new(false),
                published: CachePadded::new(AtomicPtr::new(std::ptr::null_mut())),
                private: CachePadded::new(PrivateHalves::new()),
                broadcasts: FlaggedQueue::new(),
                stands_in_for: AtomicUsize::new(0),
            })
            .collect();
        let registry = Arc::new(Registry {
            slots,
            started: AtomicUsize::new(0),
            injector: Injector::new(),
            sleep: CachePadded::new(Sleep::new()),
            num_threads: config.num_threads,
            max_threads: config.max_threads,
            hungry: CachePadded::new(AtomicUsize::new(0)),
            spares: CachePadded::new(Mutex::new(SpareState {
                unstarted: (config.num_threads..config.max_threads).rev().collect(),
                ..SpareState::default()
            })),
            exited: Condvar::new(),
            handles: Mutex::new(Vec::new()),
            terminating: AtomicBool::new(false),
            spawned: AtomicUsize::new(0),
            stack_size: config.stack_size,
            fiber_stack_size: config.stack_size.unwrap_or(super::DEFAULT_STACK_SIZE),
            thread_names: config.thread_names,
            panic_handler: config.panic_handler,
            start_handler: config.start_handler,
            exit_handler: config.exit_handler,
            breadth_first: config.breadth_first,
            adopted: config.adopt_current_thread,
            fifo: CachePadded::new(Mutex::new(VecDeque::new())),
            tokens: CachePadded::new(config.tokens),
            trace: Tracer::new(
                if config.trace { config.max_threads } else { 0 },
                config.trace,
            ),
            stall_listeners: Mutex::new(Vec::new()),
        });
        for index in 0..config.num_threads {
            registry.spares.lock().live += 1;
            if index == 0 && config.adopt_current_thread {
                Registry::adopt_current_thread(&registry);
                continue;
            }
            if let Err(err) = Registry::start_thread_with(&registry, index, spawner.as_deref_mut())
            {
                registry.terminate();
                return Err(err);
            }
        }
        let mut spares = registry.spares.lock();
        spares.peak_live = spares.live;
        drop(spares);
        Ok(registry)
    }

    /// Starts the thread of slot `index` (slots start in order: workers, then spares).
    fn start_thread(this: &Arc<Self>, index: usize) -> io::Result<()> {
        Registry::start_thread_with(this, index, None)
    }

    /// Makes the calling thread worker 0, without a main loop (see
    /// `worker::adopt_current_thread`).
    fn adopt_current_thread(this: &Arc<Self>) {
        let deque = Worker::new_lifo();
        if this.slots[0].stealer.set(deque.stealer()).is_err() {
            unreachable!("a slot's thread is started once");
        }
        this.started.fetch_max(1, Ordering::Release);
        worker::adopt_current_thread(Arc::clone(this), 0, deque);
    }

    /// True if worker `index` is the adopted building thread.
    pub(crate) fn is_adopted(&self, index: usize) -> bool {
        self.adopted && index == 0
    }

    /// [`Registry::start_thread`] through `spawner`, if given.
    fn start_thread_with(
        this: &Arc<Self>,
        index: usize,
        spawner: Option<&mut (dyn FnMut(ThreadBuilder) -> io::Result<()> + '_)>,
    ) -> io::Result<()> {
        let deque = if this.breadth_first {
            Worker::new_fifo()
        } else {
            Worker::new_lifo()
        };
        if this.slots[index].stealer.set(deque.stealer()).is_err() {
            unreachable!("a slot's thread is started once");
        }
        // Thieves look at slots below `started` only; this one is ready for them now.
        this.started.fetch_max(index + 1, Ordering::Release);
        let name = this.thread_names.of(index);
        let registry = Arc::clone(this);
        let started = match spawner {
            Some(spawner) => spawner(ThreadBuilder {
                name,
                stack_size: this.stack_size,
                registry,
                index,
                deque,
            }),
            None => thread::spawn(name, this.stack_size, move || {
                worker::run(registry, index, deque)
            })
            .map(|handle| this.handles.lock().push(handle)),
        };
        match started {
            Ok(()) => Ok(()),
            Err(err) => {
                // The closure (and the deque in it) is gone; its stealer stays, empty.
                this.spares.lock().live -= 1;
                Err(err)
            }
        }
    }

    /// The slots whose thread has been started.
    #[inline]
    pub(crate) fn started_slots(&self) -> &[Slot] {
        &self.slots[..self.started.load(Ordering::Acquire)]
    }

    pub(crate) fn terminating(&self) -> bool {
        self.terminating.load(Ordering::SeqCst)
    }

    /// Whether an idle worker may exit: the pool was dropped and no spawned job is
    /// left (the mutant, loom builds only, ignores spawned jobs).
    pub(crate) fn may_exit(&self) -> bool {
        if !self.terminating() {
            return false;
        }
        // Pairs with the fence in `SpawnedJob::drop`: if this load still sees a job that
        // is finishing, that job's load of `terminating` sees it set (and wakes us).
        fence(Ordering::SeqCst);
        self.spawned.load(Ordering::SeqCst) == 0 || crate::sync::mutant("exit_ignores_spawned")
    }

    /// Counts a spawned job until the returned guard drops (when the job has run, or
    /// if it is dropped unrun).
    pub(crate) fn spawned_job(registry: &Arc<Registry>) -> SpawnedJob {
        registry.spawned.fetch_add(1, Ordering::SeqCst);
        SpawnedJob(Arc::clone(registry))
    }

    /// Asks every worker to exit once it runs out of work and no spawned job is left
    /// (see [`Registry::may_exit`]).
    pub(crate) fn terminate(&self) {
        self.terminating.store(true, Ordering::SeqCst);
        for slot in self.started_slots() {
            slot.parker.unpark();
        }
        // The last worker to exit stops the pool's token source (`thread_exited`); a
        // pool whose only worker is the adopted building thread has none to exit.
        let spares = self.spares.lock();
        if spares.live == usize::from(self.adopted) {
            self.tokens.shut_down();
        }
    }

    pub(crate) fn unpark_worker(&self, index: usize) {
        self.slots[index].parker.unpark();
    }

    /// The wait of worker `owner`, asleep on its own stack, is over: wake it. Until it
    /// is up, the pool counts it as about to run (see [`Registry::enter_idle`]).
    pub(crate) fn wake_waiter(&self, owner: usize) {
        self.slots[owner].woken.store(true, Ordering::SeqCst);
        self.unpark_worker(owner);
    }

    /// The wait of fiber `fiber` of worker `owner` is over: queue it for its worker (a
    /// fiber never moves to another thread) and wake that worker.
    pub(crate) fn make_ready(&self, owner: usize, fiber: usize) {
        self.slots[owner].ready.push(fiber);
        self.unpark_worker(owner);
    }

    /// Queues a job from outside the pool's workers and wakes a sleeper for it.
    pub(crate) fn inject(&self, job: JobRef) {
        self.injector.push(job);
        self.sleep.announce_work(|w| self.unpark_worker(w));
    }

    /// True if some deque or the injector holds a job.
    pub(crate) fn has_work(&self) -> bool {
        !self.injector.is_empty()
            || self.started_slots().iter().any(|s| {
                s.stealer.get().is_some_and(|st| !st.is_empty())
                    || !s.published.load(Ordering::SeqCst).is_null()
            })
    }

    /// True if a job broadcast to worker `index` waits for it.
    pub(crate) fn has_broadcast_for(&self, index: usize) -> bool {
        self.slots[index].broadcasts.any()
    }

    /// Queues `job` for worker `index` alone and wakes it: it runs the job when it next
    /// looks for work (after its own deque), also from inside a wait.
    pub(crate) fn broadcast_to(&self, index: usize, job: JobRef) {
        self.slots[index].broadcasts.push(job);
        // The mutant (loom builds only) forgets to wake the worker it queued for.
        if !crate::sync::mutant("broadcast_unwoken") {
            self.unpark_worker(index);
        }
    }

    /// The index `current_thread_index` reports for the thread of slot `index`: its own
    /// for a worker, the one of the worker it stands in for for a spare.
    pub(crate) fn public_index(&self, index: usize) -> usize {
        if index < self.num_threads {
            index
        } else {
            self.slots[index].stands_in_for.load(Ordering::Relaxed)
        }
    }

    /// Runs the builder's start (or exit) handler for worker `index`, if any; a panic
    /// in it goes to the panic handler, as rayon does.
    pub(crate) fn run_thread_hook(&self, index: usize, start: bool) {
        let hook = if start {
            &self.start_handler
        } else {
            &self.exit_handler
        };
        if let Some(hook) = hook {
            if let Err(payload) = catch(|| hook(index)) {
                self.handle_panic(payload);
            }
        }
    }

    pub(crate) fn handle_panic(&self, payload: Box<dyn Any + Send>) {
        match &self.panic_handler {
            // A panicking handler must not take the worker down with it.
            Some(handler) => {
                if let Err(second) = catch(|| handler(payload)) {
                    drop_payload(second);
                }
            }
            // The standard panic hook has already printed the message; carry on (a
            // payload whose `Drop` panics must not take the worker down either).
            None => drop_payload(payload),
        }
    }

    /// `worker` is about to block: count it, and make sure `num_threads` can still run.
    pub(crate) fn enter_blocked(&self, worker: &WorkerThread) {
        // What this worker kept private must be runnable by others while it blocks, and
        // first of all by the spare that takes over its deque: the blocking call often
        // waits for the other half of the `join` it runs in, so the hidden halves go on
        // top of the deque before the hand-off, where the spare takes them first.
        worker.expose_hidden();
        let mut spares = self.spares.lock();
        spares.blocked += 1;
        spares.peak_blocked = spares.peak_blocked.max(spares.blocked);
        if spares.runnable() < self.num_threads {
            if let Some(index) = spares.parked.pop() {
                drop(spares);
                self.hand_off(worker, index);
                self.unpark_worker(index);
                self.trace
                    .mark(worker.index, || MarkKind::SpareWoken(index));
            } else if let Some(index) = spares.unstarted.pop() {
                spares.live += 1;
                spares.peak_live = spares.peak_live.max(spares.live);
                drop(spares);
                self.hand_off(worker, index);
                // Failing to start a spare costs parallelism, not correctness (the
                // handed-off jobs stay stealable from the spare's slot, see below).
                if Registry::start_thread(&worker.registry, index).is_err() {
                    for job in self.slots[index].take_handoff() {
                        self.inject(job);
                    }
                }
                self.trace
                    .mark(worker.index, || MarkKind::SpareStarted(index));
            }
        }
        if !worker.deque_is_empty() {
            // Our jobs need another runner now that we stop.
            self.sleep.announce_work(|w| self.unpark_worker(w));
        }
        worker.stop_running();
    }

    /// Gives the spare `spare` standing in for `worker` the jobs of `worker`'s deque, in
    /// the same order: it runs the newest first, as `worker` would have (often the job
    /// that `worker`'s blocking call waits for, which a thief would take last).
    fn hand_off(&self, worker: &WorkerThread, spare: usize) {
        self.slots[spare]
            .stands_in_for
            .store(self.public_index(worker.index), Ordering::Relaxed);
        let mut jobs = Vec::new();
        while let Some(job) = worker.pop() {
            jobs.push(job);
        }
        jobs.reverse();
        self.slots[spare].give_handoff(jobs);
    }

    pub(crate) fn leave_blocked(&self, worker: &WorkerThread) {
        worker.start_running();
        let mut spares = self.spares.lock();
        spares.blocked -= 1;
        if spares.runnable() > self.num_threads {
            // Surplus again: nudge started spares that sleep idle (not parked) so they
            // re-check and park. A spare that is busy just sees a spurious wake-up.
            let started = self.max_threads - spares.unstarted.len();
            let nudge: Vec<usize> = (self.num_threads..started)
                .filter(|i| !spares.parked.contains(i))
                .collect();
            drop(spares);
            for index in nudge {
                self.unpark_worker(index);
            }
        }
    }

    /// Called by an idle spare: parks it if the pool has more runnable threads than it
    /// needs, until a blocker wants it back or the pool shuts down.
    pub(crate) fn park_spare(&self, worker: &WorkerThread) -> SpareOutcome {
        let index = worker.index;
        let mut spares = self.spares.lock();
        if spares.runnable() <= self.num_threads {
            return SpareOutcome::Needed;
        }
        spares.parked.push(index);
        drop(spares);
        worker.stop_running();
        let outcome = loop {
            self.slots[index].parker.park();
            let mut spares = self.spares.lock();
            let Some(pos) = spares.parked.iter().position(|&i| i == index) else {
                break SpareOutcome::Resumed;
            };
            // A dropped pool keeps its parked spares while a spawned job is unfinished:
            // it may still block and need one (the last spawned job wakes them).
            if self.may_exit() {
                spares.parked.swap_remove(pos);
                break SpareOutcome::Terminated;
            }
        };
        worker.start_running();
        outcome
    }

    /// A worker thread is exiting.
    pub(crate) fn thread_exited(&self) {
        let mut spares = self.spares.lock();
        spares.live -= 1;
        if spares.live == usize::from(self.adopted) && self.terminating() {
            // The last worker is gone: stop taking tokens for this pool.
            self.tokens.shut_down();
            self.exited.notify_all();
        }
    }

    /// Blocks until every worker thread has exited (after `terminate`), but for an
    /// adopted building thread, which stays a worker.
    pub(crate) fn wait_for_exit(&self) {
        let mut spares = self.spares.lock();
        while spares.live > usize::from(self.adopted) {
            spares = self.exited.wait(spares);
        }
    }

    /// Joins the threads weft started (after [`Registry::wait_for_exit`]): their
    /// thread-local destructors have run when this returns.
    pub(crate) fn join_threads(&self) {
        let handles = std::mem::take(&mut *self.handles.lock());
        for handle in handles {
            // A worker's body catches every panic of user code; there is nothing to
            // report if the thread still ended in one (a thread-local's `Drop`).
            let _ = handle.join();
        }
    }

    /// A worker is about to sleep with nothing to run. If that leaves the whole pool
    /// unable to run anything while nothing outside it can make progress for it (no
    /// thread inside `weft::blocking`, no wait on another pool), the pool is stalled:
    /// whatever waits now waits forever, so every stall listener is told.
    ///
    /// Exact, with no timer: the counts change under one lock, and a worker counts as
    /// idle only after it found no job, no ready fiber and no set latch. Work can only
    /// appear through a running thread, a blocked one, or another pool, all excluded;
    /// whatever a running thread made possible before it went idle is visible here (a
    /// job queued, a fiber made ready, a sleeping waiter marked `woken`).
    pub(crate) fn enter_idle(&self) {
        let mut spares = self.spares.lock();
        spares.idle += 1;
        let stalled = spares.idle == spares.live - spares.parked.len()
            && spares.blocked == 0
            && spares.external_waits == 0
            && !self.has_work()
            // The mutant (loom builds only) forgets fibers that are ready to resume.
            && (crate::sync::mutant("stall_ignores_ready")
                || !self
                    .started_slots()
                    .iter()
                    .any(|slot| {
                        slot.ready.any()
                            || slot_woken(slot)
                            || slot.broadcasts.any()
                    }));
        drop(spares);
        if stalled {
            let listeners: Vec<_> = self
                .stall_listeners
                .lock()
                .iter()
                .filter_map(Weak::upgrade)
                .collect();
            for listener in listeners {
                listener.pool_stalled(self);
            }
        }
    }

    /// The worker woke up (see [`Registry::enter_idle`]).
    pub(crate) fn leave_idle(&self) {
        self.spares.lock().idle -= 1;
    }

    /// A wait of one of this pool's workers now depends on another pool.
    pub(crate) fn external_wait_begin(&self) {
        self.spares.lock().external_waits += 1;
    }

    /// That wait is over (see [`Registry::external_wait_begin`]).
    pub(crate) fn external_wait_end(&self) {
        self.spares.lock().external_waits -= 1;
    }

    /// Asks to be told when this pool stalls (once per listener; dead ones are dropped).
    pub(crate) fn listen_for_stalls(&self, listener: &std::sync::Arc<dyn StallListener>) {
        let mut listeners = self.stall_listeners.lock();
        listeners.retain(|l| l.strong_count() > 0);
        let known = listeners.iter().any(|l| {
            l.upgrade()
                .is_some_and(|l| std::sync::Arc::ptr_eq(&l, listener))
        });
        if !known {
            listeners.push(std::sync::Arc::downgrade(listener));
        }
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let tokens = self.tokens.stats();
        let spares = self.spares.lock();
        PoolStats {
            live_threads: spares.live,
            blocked: spares.blocked,
            parked_spares: spares.parked.len(),
            peak_live_threads: spares.peak_live,
            peak_blocked: spares.peak_blocked,
            running: tokens.running,
            peak_running: tokens.peak_running,
            tokens_held: tokens.held,
            peak_tokens_held: tokens.peak_held,
        }
    }

    /// Runs `op` on a worker of this registry: directly if the current thread is one,
    /// else by injecting a job and blocking until it is done.
    pub(crate) fn in_worker<R: Send>(&self, op: impl FnOnce(&WorkerThread) -> R + Send) -> R {
        let current = WorkerThread::current();
        // SAFETY: `current` is null or points to this thread's live WorkerThread.
        match unsafe { current.as_ref() } {
            Some(worker) if std::ptr::eq(&*worker.registry, self) => op(worker),
            Some(worker) => self.in_worker_blocking(Some(worker), op),
            None => self.in_worker_blocking(None, op),
        }
    }

    /// Injects `op` and waits until a worker of this pool has run it. A thread outside
    /// any pool blocks. A worker of another pool (`waiter`) waits as it waits for a
    /// join half: its fiber suspends (or its own stack runs that pool's other work on
    /// fibers), so the wait costs that pool no thread and runs nothing on top of the
    /// waiting frame.
    fn in_worker_blocking<R: Send>(
        &self,
        waiter: Option<&WorkerThread>,
        op: impl FnOnce(&WorkerThread) -> R + Send,
    ) -> R {
        let run = || {
            // SAFETY: injected jobs run on a worker of this registry.
            let worker = unsafe { &*WorkerThread::current() };
            op(worker)
        };
        match waiter {
            Some(waiter) => {
                let job = StackJob::new(
                    run,
                    WorkerLatch::new(&waiter.registry, waiter.index),
                    super::context::current(),
                );
                // From the injection until the latch is set, a worker of this pool may
                // run `job` on our stack: nothing may unwind out of this frame meanwhile.
                let window = AbortIfPanic("a cross-pool `install`");
                // The waiter's pool must not take this wait for a stall: this pool runs
                // the job.
                waiter.registry.external_wait_begin();
                // SAFETY: `job` lives on this stack until its latch is set (we wait).
                self.inject(unsafe { job.as_job_ref() });
                waiter.wait_until(&job.latch);
                waiter.registry.external_wait_end();
                window.disarm();
                job.into_result()
            }
            None => {
                let job = StackJob::new(run, LockLatch::new(), super::context::current());
                let window = AbortIfPanic("an `install` from outside the pool");
                // SAFETY: `job` lives on this stack until its latch is set (we wait).
                self.inject(unsafe { job.as_job_ref() });
                job.latch.wait();
                window.disarm();
                job.into_result()
            }
        }
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
    }
}

static GLOBAL: OnceLock<Arc<Registry>> = OnceLock::new();

/// The global registry, built on first use with the default configuration.
pub(crate) fn global_registry() -> &'static Arc<Registry> {
    GLOBAL.get_or_init(|| {
        let config = crate::pool::builder::ThreadPoolBuilder::new()
            .into_config()
            .expect("weft: failed to configure the global thread pool");
        Registry::new(config, None).expect("weft: failed to start the global thread pool")
    })
}

/// Installs `registry` as the global one; fails if a global pool already exists.
pub(crate) fn set_global_registry(registry: Arc<Registry>) -> Result<(), Arc<Registry>> {
    GLOBAL.set(registry)
}

/// The registry of the current worker, else the global one.
pub(crate) fn current_registry() -> Arc<Registry> {
    // SAFETY: null or this thread's live WorkerThread.
    match unsafe { WorkerThread::current().as_ref() } {
        Some(worker) => Arc::clone(&worker.registry),
        None => Arc::clone(global_registry()),
    }
}

/// A worker thread of a pool being built, handed to the builder's
/// [`spawn_handler`](crate::ThreadPoolBuilder::spawn_handler), which must start a
/// thread that calls [`ThreadBuilder::run`].
pub struct ThreadBuilder {
    name: String,
    stack_size: Option<usize>,
    registry: Arc<Registry>,
    index: usize,
    deque: Worker<JobRef>,
}

impl ThreadBuilder {
    /// The worker's index in its pool.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The name the builder chose for the thread (see
    /// [`ThreadPoolBuilder::thread_name`](crate::ThreadPoolBuilder::thread_name)).
    pub fn name(&self) -> Option<&str> {
        Some(&self.name)
    }

    /// The stack size the builder chose for the thread, if any.
    pub fn stack_size(&self) -> Option<usize> {
        self.stack_size
    }

    /// Runs the worker on the current thread until its pool shuts down.
    pub fn run(self) {
        worker::run(self.registry, self.index, self.deque)
    }
}

impl std::fmt::Debug for ThreadBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadBuilder")
            .field("index", &self.index)
            .field("name", &self.name)
            .field("stack_size", &self.stack_size)
            .finish_non_exhaustive()
    }
}
