//! A worker thread: its main loop, and how it waits without false dependencies.
//!
//! A worker runs jobs from its own deque (newest first), then steals (oldest first) from
//! other workers and the injector. Idle, it spins [`SPIN_ROUNDS`] rounds, then sleeps in
//! the idle list (see `sleep.rs`).
//!
//! **Waiting.** A worker that waits for a latch (`join`'s second half, a `scope`) runs
//! other jobs meanwhile, so waits cost no parallelism. What it may run depends on the
//! current context (see `context.rs`):
//!
//! - *No context*: anything (rayon's behaviour). When nothing is left, it sleeps in the
//!   idle list and its latch wakes it.
//! - *Context `C`*: a **restricted wait**. It runs only jobs whose context lies in `C`'s
//!   subtree: its own deque's newest job if it qualifies, then jobs stolen from the worker
//!   that took the awaited job (whose deque then holds that job's descendants), then
//!   qualifying injected jobs. A stolen job that does not qualify is moved to the
//!   injector for an unrestricted worker. When nothing qualifies, the worker *blocks*: it
//!   counts as blocked so the registry can wake a spare, and sleeps until its latch is
//!   set.

use std::cell::Cell;
use std::ptr;

use super::context::{self, Context};
use super::job::JobRef;
use super::latch::WorkerLatch;
use super::registry::{Registry, SpareOutcome};
use super::tokens::Permit;
use super::unwind::AbortIfPanic;
use crate::sync::atomic::Ordering;
use crate::sync::deque::{Steal, Worker};
use crate::sync::{thread, weft_thread_local, Arc};

/// How many fruitless searches an idle or waiting worker makes before it sleeps.
/// (None under loom: a spin's `yield_now` would let loom run every other thread first
/// and hide the schedules where a worker goes to sleep while another acts.)
const SPIN_ROUNDS: u32 = if cfg!(loom) { 0 } else { 32 };

weft_thread_local! {
    /// The worker running on this thread, if any.
    static WORKER: Cell<*const WorkerThread> = Cell::new(ptr::null());
}

/// The per-thread state of a worker.
pub(crate) struct WorkerThread {
    deque: Worker<JobRef>,
    pub(crate) index: usize,
    pub(crate) registry: Arc<Registry>,
    rng: Cell<u64>,
    /// The token this worker runs on; `None` while it is parked.
    permit: Cell<Option<Permit>>,
    /// Counted in the registry's `hungry`: looking for work (see `join.rs`).
    hungry: Cell<bool>,
    /// The newest `join` second half kept private (see [`HiddenJob`]), or null.
    hidden: Cell<*const HiddenJob>,
}

/// A `join` second half kept private to its worker while nobody could steal it.
///
/// Hidden jobs form a list through the stack frames of the joins that made them, newest
/// first. They are exposed (pushed onto the deque, oldest first) when a later `join`
/// sees a hungry worker, when this worker starts looking for work, and when it blocks,
/// so a thief can still take them; a join whose second half is still hidden when its
/// first half returns runs it inline, like a one-thread pool.
pub(crate) struct HiddenJob {
    job: JobRef,
    below: Cell<*const HiddenJob>,
    exposed: Cell<bool>,
}

impl HiddenJob {
    pub(crate) fn new(job: JobRef) -> Self {
        HiddenJob {
            job,
            below: Cell::new(ptr::null()),
            exposed: Cell::new(false),
        }
    }
}

/// Entry point of a worker thread.
pub(crate) fn run(registry: Arc<Registry>, index: usize, deque: Worker<JobRef>) {
    let worker = WorkerThread {
        deque,
        index,
        registry,
        rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1)),
        permit: Cell::new(None),
        hungry: Cell::new(false),
        hidden: Cell::new(ptr::null()),
    };
    WORKER.with(|w| w.set(&worker));
    worker.start_running();
    worker.main_loop();
    worker.stop_running();
    WORKER.with(|w| w.set(ptr::null()));
    worker.registry.thread_exited();
}

impl WorkerThread {
    /// The current thread's worker, or null.
    #[inline]
    pub(crate) fn current() -> *const WorkerThread {
        WORKER.with(|w| w.get())
    }

    /// The current thread's worker index, if it is a worker.
    pub(crate) fn current_index() -> Option<usize> {
        // SAFETY: null or this thread's live WorkerThread.
        unsafe { Self::current().as_ref() }.map(|w| w.index)
    }

    /// Takes a permit to run (see `tokens.rs`); blocks without spinning if none is free.
    pub(crate) fn start_running(&self) {
        let held = self.permit.take();
        debug_assert!(held.is_none(), "a worker holds one permit");
        drop(held);
        let _span = (self.registry.trace).span(self.index, || crate::trace::SpanKind::TokenAcquire);
        self.permit.set(Some(self.registry.tokens.acquire()));
    }

    /// Gives the permit back before parking.
    pub(crate) fn stop_running(&self) {
        if let Some(permit) = self.permit.take() {
            self.registry.tokens.release(permit);
            (self.registry.trace).mark(self.index, || crate::trace::MarkKind::TokenRelease);
        }
    }

    pub(crate) fn deque_is_empty(&self) -> bool {
        self.deque.is_empty()
    }

    /// Pushes a job onto this worker's deque.
    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        self.deque.push(job);
        self.registry
            .sleep
            .hint_work(|w| self.registry.unpark_worker(w));
    }

    #[inline]
    pub(crate) fn pop(&self) -> Option<JobRef> {
        self.deque.pop()
    }

    /// Runs a job taken from a deque.
    ///
    /// # Safety
    /// The job was popped or stolen by this thread and has not run.
    #[inline]
    pub(crate) unsafe fn execute(&self, job: JobRef) {
        let _span = (self.registry.trace).span(self.index, || crate::trace::SpanKind::Job);
        // SAFETY: forwarded from the caller.
        unsafe { job.execute() }
    }

    /// Keeps `node` private to this worker (see [`HiddenJob`]). The caller must call
    /// [`WorkerThread::unhide`] before `node` goes out of scope.
    #[inline]
    pub(crate) fn hide(&self, node: &HiddenJob) {
        node.below.set(self.hidden.replace(node));
    }

    /// True if `node` is still hidden; it is then removed, and the caller runs it.
    /// False if it was exposed meanwhile (it sits in the deque like any pushed job).
    #[inline]
    pub(crate) fn unhide(&self, node: &HiddenJob) -> bool {
        if node.exposed.get() {
            return false;
        }
        debug_assert!(ptr::eq(self.hidden.get(), node), "hidden jobs nest");
        self.hidden.set(node.below.get());
        true
    }

    /// Pushes every hidden job onto the deque, oldest (largest) first.
    pub(crate) fn expose_hidden(&self) {
        let mut node = self.hidden.replace(ptr::null());
        if node.is_null() {
            return;
        }
        let mut nodes = Vec::new();
        // SAFETY: hidden nodes live in the frames of joins still running on this thread
        // (each removes its node, or finds it exposed, before it returns), and only this
        // thread touches them.
        while let Some(hidden) = unsafe { node.as_ref() } {
            nodes.push(hidden);
            node = hidden.below.get();
        }
        for hidden in nodes.into_iter().rev() {
            hidden.exposed.set(true);
            self.deque.push(hidden.job);
        }
        self.registry
            .sleep
            .hint_work(|w| self.registry.unpark_worker(w));
    }

    /// Marks this worker as looking for work or not; `join` exposes work to thieves
    /// only while some worker looks for it.
    fn set_hungry(&self, hungry: bool) {
        if hungry {
            // While we look for work, what we kept private could run elsewhere.
            self.expose_hidden();
        }
        if self.hungry.replace(hungry) != hungry {
            if hungry {
                self.registry.hungry.fetch_add(1, Ordering::Relaxed);
            } else {
                self.registry.hungry.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn main_loop(&self) {
        let mut idle_rounds = 0;
        loop {
            if let Some(job) = self.find_work() {
                self.set_hungry(false);
                // SAFETY: we just took the job from a deque.
                unsafe { self.execute(job) };
                idle_rounds = 0;
                continue;
            }
            self.set_hungry(true);
            if idle_rounds < SPIN_ROUNDS {
                idle_rounds += 1;
                thread::yield_now();
                continue;
            }
            idle_rounds = 0;
            if self.registry.terminating() {
                self.set_hungry(false);
                return;
            }
            if self.index >= self.registry.num_threads {
                self.set_hungry(false);
                match self.registry.park_spare(self) {
                    SpareOutcome::Needed => {}
                    SpareOutcome::Resumed => continue,
                    SpareOutcome::Terminated => return,
                }
            }
            self.sleep_idle(None);
        }
    }

    fn next_random(&self, bound: usize) -> usize {
        // xorshift64*: only needs to spread victims, not to be good.
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as usize % bound
    }

    /// Any job: own deque, then other workers, then the injector.
    fn find_work(&self) -> Option<JobRef> {
        self.pop().or_else(|| self.steal(Context::NONE, None))
    }

    /// A job whose context lies within `within`.
    fn find_work_within(&self, within: Context, hint: Option<usize>) -> Option<JobRef> {
        if let Some(job) = self.pop() {
            if job.ctx().is_within(within) {
                return Some(job);
            }
            // Newest-first order is kept: it goes back where it was.
            self.deque.push(job);
        }
        self.steal(within, hint)
    }

    /// Steals a job acceptable to a wait with context `within` (anything for none), from
    /// `only` if given, else from every other worker; then from the injector.
    fn steal(&self, within: Context, only: Option<usize>) -> Option<JobRef> {
        let slots = &self.registry.slots;
        let accept = |job: &JobRef| within.is_none() || job.ctx().is_within(within);
        loop {
            let mut retry = false;
            let (start, count) = match only {
                Some(victim) => (victim, 1),
                None => (self.next_random(slots.len()), slots.len()),
            };
            for k in 0..count {
                let victim = (start + k) % slots.len();
                if victim == self.index {
                    continue;
                }
                match slots[victim].stealer.steal() {
                    Steal::Success(job) if accept(&job) => return Some(job),
                    // Not ours to run here: hand it to an unrestricted worker.
                    Steal::Success(job) => self.registry.inject(job),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            match self.registry.injector.steal() {
                Steal::Success(job) if accept(&job) => return Some(job),
                Steal::Success(job) => {
                    self.registry.injector.push(job);
                }
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            if !retry {
                return None;
            }
        }
    }

    /// Waits until `latch` is set, running other jobs meanwhile as the current context
    /// allows (see the module docs). `awaited_executor` says which worker took the job
    /// we wait for, if any.
    pub(crate) fn wait_until(
        &self,
        latch: &WorkerLatch<'_>,
        awaited_executor: &dyn Fn() -> Option<usize>,
    ) {
        // The frame we wait in owns a job or latch that another thread may be using:
        // unwinding out of it would free that memory under the other thread's feet.
        let window = AbortIfPanic("a `join` or `scope` wait");
        let _span = (self.registry.trace).span(self.index, || crate::trace::SpanKind::Wait);
        let within = context::current();
        let mut idle_rounds = 0;
        while !latch.probe() {
            let job = if within.is_none() {
                self.find_work()
            } else {
                self.find_work_within(within, awaited_executor())
            };
            if let Some(job) = job {
                self.set_hungry(false);
                // SAFETY: we just took the job from a deque.
                unsafe { self.execute(job) };
                idle_rounds = 0;
                continue;
            }
            self.set_hungry(true);
            if idle_rounds < SPIN_ROUNDS {
                idle_rounds += 1;
                thread::yield_now();
                continue;
            }
            idle_rounds = 0;
            if within.is_none() {
                self.sleep_idle(Some(latch));
            } else {
                self.set_hungry(false);
                self.sleep_blocked(latch);
            }
        }
        self.set_hungry(false);
        window.disarm();
    }

    /// Sleeps in the idle list until new work arrives (or `latch` is set).
    fn sleep_idle(&self, latch: Option<&WorkerLatch<'_>>) {
        if let Some(latch) = latch {
            if !latch.prepare_sleep() {
                return;
            }
        }
        let sleep = &self.registry.sleep;
        sleep.register(self.index);
        // The mutant (loom builds only) skips the re-check after announcing sleep.
        let wake_now = self.registry.terminating()
            || latch.is_some_and(|l| l.probe())
            || (self.registry.has_work() && !crate::sync::mutant("sleep_no_recheck"));
        if !wake_now {
            let _span = (self.registry.trace).span(self.index, || crate::trace::SpanKind::Idle);
            self.stop_running();
            self.registry.slots[self.index].parker.park();
            self.start_running();
        }
        sleep.unregister(self.index);
        if let Some(latch) = latch {
            latch.finish_sleep();
        }
    }

    /// A restricted wait found nothing it may run: block until `latch` is set.
    fn sleep_blocked(&self, latch: &WorkerLatch<'_>) {
        if !latch.prepare_sleep() {
            return;
        }
        let _span = (self.registry.trace).span(self.index, || {
            crate::trace::SpanKind::Blocked(crate::trace::BlockedOn::RestrictedWait)
        });
        self.registry.enter_blocked(self);
        while !latch.probe() {
            self.registry.slots[self.index].parker.park();
        }
        self.registry.leave_blocked(self);
        latch.finish_sleep();
    }

    /// Runs `f` counted as blocked (see [`Registry::enter_blocked`]).
    pub(crate) fn blocked<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Leave<'a>(&'a WorkerThread);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.registry.leave_blocked(self.0);
            }
        }
        self.set_hungry(false);
        self.registry.enter_blocked(self);
        let _leave = Leave(self);
        f()
    }
}
