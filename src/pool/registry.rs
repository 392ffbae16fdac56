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
use std::io;

use super::job::{JobRef, StackJob};
use super::latch::LockLatch;
use super::sleep::{Parker, Sleep};
use super::tokens::TokenPool;
use super::unwind::{catch, drop_payload, AbortIfPanic};
use super::worker::{self, WorkerThread};
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::deque::{Injector, Stealer, Worker};
use crate::sync::{thread, Arc, Condvar, Mutex, OnceLock};
use crate::trace::{MarkKind, Tracer};

/// Called with the payload of a panic in a `spawn`ed job.
pub(crate) type PanicHandler = dyn Fn(Box<dyn Any + Send>) + Send + Sync;
/// Names a worker thread from its index (called at build time only).
pub(crate) type ThreadNamer = dyn FnMut(usize) -> String;

/// Everything the builder decided.
pub(crate) struct PoolConfig {
    pub(crate) num_threads: usize,
    pub(crate) max_threads: usize,
    pub(crate) stack_size: Option<usize>,
    /// The name of every slot's thread, decided at build time (so a panicking namer
    /// fails `build` instead of unwinding out of a wait that has published a job).
    pub(crate) thread_names: Vec<String>,
    pub(crate) panic_handler: Option<Box<PanicHandler>>,
    pub(crate) tokens: TokenPool,
    pub(crate) trace: bool,
}

pub(crate) struct Slot {
    pub(crate) stealer: Stealer<JobRef>,
    pub(crate) parker: Parker,
    /// The owning half of the deque until a thread takes it.
    deque: Mutex<Option<Worker<JobRef>>>,
}

#[derive(Default)]
struct SpareState {
    live: usize,
    blocked: usize,
    parked: Vec<usize>,
    unstarted: Vec<usize>,
    peak_live: usize,
    peak_blocked: usize,
    /// Bumped whenever a blocked worker resumes.
    resumes: usize,
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
    pub(crate) slots: Box<[Slot]>,
    pub(crate) injector: Injector<JobRef>,
    pub(crate) sleep: Sleep,
    pub(crate) num_threads: usize,
    pub(crate) max_threads: usize,
    /// Workers looking for work (searching, or asleep in the idle list). `join` pushes
    /// its second half for thieves only while this is non-zero.
    pub(crate) hungry: AtomicUsize,
    spares: Mutex<SpareState>,
    /// Signalled when the last worker exits.
    exited: Condvar,
    terminating: AtomicBool,
    stack_size: Option<usize>,
    thread_names: Vec<String>,
    panic_handler: Option<Box<PanicHandler>>,
    pub(crate) tokens: TokenPool,
    /// What the workers record when tracing is on.
    pub(crate) trace: Tracer,
}

impl Registry {
    pub(crate) fn new(config: PoolConfig) -> io::Result<Arc<Registry>> {
        let mut deques = Vec::with_capacity(config.max_threads);
        let slots: Box<[Slot]> = (0..config.max_threads)
            .map(|_| {
                let deque = Worker::new_lifo();
                let stealer = deque.stealer();
                deques.push(deque);
                Slot {
                    stealer,
                    parker: Parker::new(),
                    deque: Mutex::new(None),
                }
            })
            .collect();
        for (slot, deque) in slots.iter().zip(deques) {
            *slot.deque.lock() = Some(deque);
        }
        let registry = Arc::new(Registry {
            slots,
            injector: Injector::new(),
            sleep: Sleep::new(),
            num_threads: config.num_threads,
            max_threads: config.max_threads,
            hungry: AtomicUsize::new(0),
            spares: Mutex::new(SpareState {
                unstarted: (config.num_threads..config.max_threads).rev().collect(),
                ..SpareState::default()
            }),
            exited: Condvar::new(),
            terminating: AtomicBool::new(false),
            stack_size: config.stack_size,
            thread_names: config.thread_names,
            panic_handler: config.panic_handler,
            tokens: config.tokens,
            trace: Tracer::new(config.max_threads, config.trace),
        });
        for index in 0..config.num_threads {
            registry.spares.lock().live += 1;
            if let Err(err) = Registry::start_thread(&registry, index) {
                registry.terminate();
                return Err(err);
            }
        }
        let mut spares = registry.spares.lock();
        spares.peak_live = spares.live;
        drop(spares);
        Ok(registry)
    }

    fn start_thread(this: &Arc<Self>, index: usize) -> io::Result<()> {
        let deque = this.slots[index]
            .deque
            .lock()
            .take()
            .expect("a slot's deque is taken by the one thread started for it");
        let name = this.thread_names[index].clone();
        let registry = Arc::clone(this);
        let started = thread::spawn(name, this.stack_size, move || {
            worker::run(registry, index, deque)
        });
        match started {
            Ok(_handle) => Ok(()),
            Err(err) => {
                // The closure (and the deque in it) is gone; a fresh deque would not
                // match the slot's stealer, so the slot stays unusable.
                this.spares.lock().live -= 1;
                Err(err)
            }
        }
    }

    pub(crate) fn terminating(&self) -> bool {
        self.terminating.load(Ordering::SeqCst)
    }

    /// Asks every worker to exit once it runs out of work.
    pub(crate) fn terminate(&self) {
        self.terminating.store(true, Ordering::SeqCst);
        for slot in self.slots.iter() {
            slot.parker.unpark();
        }
    }

    pub(crate) fn unpark_worker(&self, index: usize) {
        self.slots[index].parker.unpark();
    }

    /// Queues a job from outside the pool's workers and wakes a sleeper for it.
    pub(crate) fn inject(&self, job: JobRef) {
        self.injector.push(job);
        self.sleep.announce_work(|w| self.unpark_worker(w));
    }

    /// True if some deque or the injector holds a job.
    pub(crate) fn has_work(&self) -> bool {
        !self.injector.is_empty() || self.slots.iter().any(|s| !s.stealer.is_empty())
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
        // What this worker kept private must be runnable by others while it blocks.
        worker.expose_hidden();
        let mut spares = self.spares.lock();
        spares.blocked += 1;
        spares.peak_blocked = spares.peak_blocked.max(spares.blocked);
        if spares.runnable() < self.num_threads {
            if let Some(index) = spares.parked.pop() {
                drop(spares);
                self.unpark_worker(index);
                self.trace
                    .mark(worker.index, || MarkKind::SpareWoken(index));
            } else if let Some(index) = spares.unstarted.pop() {
                spares.live += 1;
                spares.peak_live = spares.peak_live.max(spares.live);
                drop(spares);
                // Failing to start a spare costs parallelism, not correctness.
                let _ = Registry::start_thread(&worker.registry, index);
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

    pub(crate) fn leave_blocked(&self, worker: &WorkerThread) {
        worker.start_running();
        let mut spares = self.spares.lock();
        spares.blocked -= 1;
        spares.resumes += 1;
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
            if self.terminating() {
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
        if spares.live == 0 && self.terminating() {
            // The last worker is gone: stop taking tokens for this pool.
            self.tokens.shut_down();
            self.exited.notify_all();
        }
    }

    /// Blocks until every worker thread has exited (after `terminate`).
    pub(crate) fn wait_for_exit(&self) {
        let mut spares = self.spares.lock();
        while spares.live > 0 {
            spares = self.exited.wait(spares);
        }
    }

    /// `(runnable workers, resume count)`: if no worker is runnable and no blocked one
    /// has resumed between two probes, nothing in the pool can make progress.
    pub(crate) fn stall_probe(&self) -> (usize, usize) {
        let spares = self.spares.lock();
        (spares.runnable(), spares.resumes)
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

    /// Injects `op` and blocks this thread until a worker has run it. A worker of
    /// another pool (`blocked_in`) counts as blocked in its own pool meanwhile (which may
    /// start a spare there) instead of running that pool's unrelated jobs on top of its
    /// stack.
    fn in_worker_blocking<R: Send>(
        &self,
        blocked_in: Option<&WorkerThread>,
        op: impl FnOnce(&WorkerThread) -> R + Send,
    ) -> R {
        let job = StackJob::new(
            || {
                // SAFETY: injected jobs run on a worker of this registry.
                let worker = unsafe { &*WorkerThread::current() };
                op(worker)
            },
            LockLatch::new(),
            super::context::current(),
        );
        // From the injection until the latch is set, a worker of this pool may run
        // `job` on our stack: nothing may unwind out of this frame meanwhile.
        let window = AbortIfPanic("a cross-pool `install`");
        // SAFETY: `job` lives on this stack until its latch is set (we wait below).
        self.inject(unsafe { job.as_job_ref() });
        match blocked_in {
            Some(worker) => worker.blocked(|| job.latch.wait()),
            None => job.latch.wait(),
        }
        window.disarm();
        match job.into_result() {
            Ok(value) => value,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }
}

static GLOBAL: OnceLock<Arc<Registry>> = OnceLock::new();

/// The global registry, built on first use with the default configuration.
pub(crate) fn global_registry() -> &'static Arc<Registry> {
    GLOBAL.get_or_init(|| {
        let config = crate::pool::builder::ThreadPoolBuilder::new()
            .into_config()
            .expect("weft: failed to configure the global thread pool");
        Registry::new(config).expect("weft: failed to start the global thread pool")
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
