//! The worker loop, and how a worker waits.
//!
//! **Running.** A worker resumes its ready fibers first (they hold waits that are over,
//! and only this thread may resume them), then runs jobs from its own deque (newest
//! first), then steals (oldest first) from other workers and the injector. Idle, it
//! spins [`SPIN_ROUNDS`] rounds, tries to snatch a half another worker keeps private
//! (see `snatch.rs`), then sleeps in the idle list (see `sleep.rs`). A worker
//! counts as *hungry* (and `join` pushes its halves for thieves) only while it searches,
//! not while it sleeps: a sleeper is woken by the halves `join` publishes or pushes (see
//! [`HiddenJob`]). The main loop runs jobs straight on the worker's own stack: no fiber,
//! no switch.
//!
//! **Waiting** (`join`'s stolen half, a `scope`, another pool's `install`; query waits
//! in `query/fetch.rs` use the same fibers): see `fiber.rs`. On a fiber the waiter
//! suspends; on the worker's own stack it runs a wait loop that resumes ready fibers and
//! runs other jobs on fresh fibers, and sleeps when there is nothing to do. Any job may
//! run while any wait is pending: nothing ever runs on top of a waiting frame.
//!
//! A wait during unwinding (a `Drop` that waits while a panic is in flight) does not
//! switch fibers, since the panic count belongs to the thread; nor does a wait inside
//! `weft::blocking`, whose thread has stood aside for a spare. Both block the thread,
//! counted as blocked so a spare keeps the pool's parallelism.
//!
//! `weft::blocking` is the one wait that holds a thread: the user's own blocking call.
//! It is reentrant (nested calls count once), and while the worker is inside it a
//! spare runs the pool's other work. Its suspended fibers wait for it: fibers never
//! move to another thread.

use std::cell::Cell;
use std::ptr;

use super::fiber::FiberSet;
use super::half::{HiddenJob, EAGER, EXPOSED, PUBLISHED, SNATCHED};
use super::job::JobRef;
use super::latch::WorkerLatch;
use super::registry::{Registry, Slot, SpareOutcome};
use super::snatch::PrivateHalves;
use super::tokens::Permit;
use super::unwind::AbortIfPanic;
use crate::sync::atomic::{AtomicPtr, Ordering};
use crate::sync::deque::{Steal, Worker};
use crate::sync::{thread, weft_thread_local, Arc};

/// How many fruitless searches an idle or waiting worker makes before it sleeps.
/// (None under loom: a spin's `yield_now` would let loom run every other thread first
/// and hide the schedules where a worker goes to sleep while another acts.)
const SPIN_ROUNDS: u32 = if cfg!(loom) { 0 } else { 32 };

/// At most this many of a worker's `join` halves are pushed by `hide` itself rather than
/// kept private (see [`WorkerThread::offer`]); fewer on smaller pools.
const MAX_EAGER: u32 = 8;

/// How many times a wait polls its latch before it suspends (a few microseconds).
const WAIT_SPINS: u32 = if cfg!(loom) { 0 } else { 2_000 };

weft_thread_local! {
    /// The worker running on this thread, if any.
    static WORKER: Cell<*const WorkerThread> = Cell::new(ptr::null());
}

/// The per-thread state of a worker.
pub(crate) struct WorkerThread {
    deque: Worker<JobRef>,
    pub(crate) index: usize,
    pub(crate) registry: Arc<Registry>,
    /// The pool has one thread (`join` then runs its halves in order): a copy of the
    /// registry's `num_threads == 1`, next to what `join` reads anyway.
    pub(crate) solo: bool,
    /// This worker's `registry.slots[index]`, whose `published` and `private` every
    /// `join` uses: one load instead of an indexed, bounds-checked walk from the
    /// registry.
    slot: *const Slot,
    rng: Cell<u64>,
    /// The token this worker runs on; `None` while it is parked.
    permit: Cell<Option<Permit>>,
    /// Counted in the registry's `hungry`: looking for work (see `join.rs`).
    hungry: Cell<bool>,
    /// Halves `hide` pushed itself whose joins have not returned (see
    /// [`WorkerThread::offer`]), and how many it may have at once.
    eager: Cell<u32>,
    eager_limit: u32,
    /// This worker's fibers (see `fiber.rs`).
    pub(crate) fibers: FiberSet,
    /// Non-zero while the worker runs code counted as blocked (`weft::blocking`).
    blocking_depth: Cell<u32>,
}

/// Entry point of a worker thread.
pub(crate) fn run(registry: Arc<Registry>, index: usize, deque: Worker<JobRef>) {
    let worker = WorkerThread::new(registry, index, deque);
    set_current(&worker);
    worker.start_running();
    // A spare reports the worker it first stood in for (see `Registry::public_index`).
    let public_index = worker.registry.public_index(index);
    worker.registry.run_thread_hook(public_index, true);
    worker.main_loop();
    worker.registry.run_thread_hook(public_index, false);
    worker.stop_running();
    WORKER.with(|w| w.set(ptr::null()));
    worker.registry.thread_exited();
}

/// Makes the calling thread worker `index` of `registry` for the rest of its life,
/// without running a main loop (rayon's `use_current_thread`): it runs the pool's jobs
/// only from inside pool calls (a `join`'s or scope's wait, `yield_now`), while the
/// other workers steal from its deque. Its worker state is leaked, as in rayon, and it
/// keeps the permit it takes here. Start and exit handlers do not run for it.
pub(crate) fn adopt_current_thread(registry: Arc<Registry>, index: usize, deque: Worker<JobRef>) {
    let worker: &'static WorkerThread =
        Box::leak(Box::new(WorkerThread::new(registry, index, deque)));
    set_current(worker);
    worker.start_running();
}

/// Makes `worker` this thread's worker (a worker's thread, or under loom a fiber's).
fn set_current(worker: &WorkerThread) {
    WORKER.with(|w| w.set(worker));
}

/// A worker carried into one of its fibers.
struct WorkerRef(*const WorkerThread);
// SAFETY: a fiber runs only on its worker's thread (see `execute_on_fiber`).
unsafe impl Send for WorkerRef {}

impl WorkerThread {
    fn new(registry: Arc<Registry>, index: usize, deque: Worker<JobRef>) -> Self {
        let fiber_stack = registry.fiber_stack_size;
        let slot: *const Slot = &registry.slots[index];
        let eager_limit = (registry.num_threads as u32)
            .saturating_sub(1)
            .min(MAX_EAGER);
        WorkerThread {
            deque,
            index,
            solo: registry.num_threads == 1,
            slot,
            registry,
            rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1)),
            permit: Cell::new(None),
            hungry: Cell::new(false),
            eager: Cell::new(0),
            eager_limit,
            fibers: FiberSet::new(fiber_stack),
            blocking_depth: Cell::new(0),
        }
    }

    /// This worker's slot's published half (see [`HiddenJob`]).
    #[inline]
    fn published(&self) -> &AtomicPtr<HiddenJob> {
        // SAFETY: points into `self.registry`'s slots, which live as long as the
        // registry, which `self` keeps alive.
        unsafe { &(*self.slot).published }
    }

    /// This worker's private halves (see `snatch.rs`).
    #[inline]
    fn private(&self) -> &PrivateHalves {
        // SAFETY: as in `published`.
        unsafe { &(*self.slot).private }
    }

    /// The current thread's worker, or null.
    #[inline]
    pub(crate) fn current() -> *const WorkerThread {
        WORKER.with(|w| w.get())
    }

    /// The current thread's worker index as rayon reports it (below the pool's
    /// `num_threads`; a spare reports the worker it stands in for), if it is a worker.
    pub(crate) fn current_index() -> Option<usize> {
        // SAFETY: null or this thread's live WorkerThread.
        unsafe { Self::current().as_ref() }.map(|w| w.registry.public_index(w.index))
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

    /// Keeps `node` private to this worker (see [`HiddenJob`]) unless this worker's slot
    /// is free: then it is offered to idle workers instead (see
    /// [`WorkerThread::offer`]). The caller must call [`WorkerThread::unhide`] before
    /// `node` goes out of scope.
    #[inline]
    pub(crate) fn hide(&self, node: &HiddenJob) {
        // The push comes first: a worker that claims the slot's half meanwhile looks
        // for private halves before it sleeps, and either finds this one or we find
        // the slot free (`PrivateHalves::push` fences against its look).
        // SAFETY: as in `published`. (One load of the slot's address for both uses:
        // the push's fence would make the compiler load it again.)
        let slot = unsafe { &*self.slot };
        slot.private.push(node);
        if crate::sync::publishing() && slot.published.load(Ordering::Relaxed).is_null() {
            self.offer(node);
        }
    }

    /// `node`, hidden while the slot is free, is made reachable to idle workers: pushed
    /// onto the deque while fewer than `eager_limit` halves pushed this way are
    /// outstanding, else kept private and published in the slot.
    ///
    /// One published half per worker is not enough when first halves block in user
    /// code: in `join(|| join(|| wait_for_c(), || c()), || other())` the outer second
    /// half takes the slot, the inner one would stay private, and its owner never calls
    /// into weft again. Pushing the outermost halves (the first ones hidden after the
    /// slot frees) lets that many levels of such nesting reach idle workers without
    /// the system call a snatch costs (see `snatch.rs`); deeper joins keep their halves
    /// private and cost no more than before. The pushes happen once per freed slot, not
    /// per `join`.
    #[cold]
    fn offer(&self, node: &HiddenJob) {
        // Out of the list again first (`hide` pushed it): a thief may have snatched it.
        if !self.private().pop(node) && self.private().settle_one(node) {
            return;
        }
        let eager = self.eager.get();
        if eager < self.eager_limit
            && crate::sync::eager_halves()
            && !crate::sync::mutant("eager_unexposed")
        {
            self.eager.set(eager + 1);
            let job = node.hand_out(&self.registry, self.index);
            node.set_flags(node.flags() | EXPOSED | EAGER);
            self.deque.push(job);
            // Its owner may be about to block in user code: make sure a sleeper wakes.
            // (The mutant, loom builds only, leaves it to a sleeper's own luck.)
            if !crate::sync::mutant("eager_unannounced") {
                self.registry
                    .sleep
                    .announce_work(|w| self.registry.unpark_worker(w));
            }
            return;
        }
        // Offered before it joins the list: thieves walking it leave it to the slot.
        node.mark_offered();
        self.private().push(node);
        self.publish(node);
    }

    #[cold]
    fn publish(&self, node: &HiddenJob) {
        if crate::sync::mutant("hidden_unpublished") {
            // Deliberately broken (loom builds only): idle workers never see the node.
            return;
        }
        // The latch must be in place before an idle worker can claim the node. The
        // mutant (loom builds only) writes it after publishing.
        let latch_late = crate::sync::mutant("latch_after_publish");
        if !latch_late {
            node.hand_out(&self.registry, self.index);
        }
        node.set_flags(node.flags() | PUBLISHED);
        self.published().store(
            node as *const HiddenJob as *mut HiddenJob,
            Ordering::Release,
        );
        if latch_late {
            node.hand_out(&self.registry, self.index);
        }
        // A worker may be on its way to sleep: the sleep handshake (`sleep.rs`) makes
        // sure it either sees the node or is woken.
        if !crate::sync::mutant("publish_unannounced") {
            self.registry
                .sleep
                .announce_work(|w| self.registry.unpark_worker(w));
        }
    }

    /// Takes a published `node` back from the slot: false if an idle worker claimed it
    /// first (it then runs the job and sets its latch).
    fn unpublish(&self, node: &HiddenJob) -> bool {
        node.set_flags(node.flags() & !PUBLISHED);
        let taken_back = self
            .published()
            .compare_exchange(
                node as *const HiddenJob as *mut HiddenJob,
                ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok();
        if !taken_back && crate::sync::mutant("hidden_ends_at_claim") {
            // Deliberately broken (loom builds only): the node's storage ends as soon as
            // its owner finds it claimed, as when `join` scoped it to the hiding branch,
            // possibly before the claimer has read the job out of it.
            node.end_of_storage();
        }
        taken_back
    }

    /// True if `node` is still hidden; it is then removed, and the caller runs it.
    /// False if it was exposed meanwhile (it sits in the deque like any pushed job),
    /// claimed by an idle worker, or snatched by one: the caller then waits for it like
    /// a stolen job.
    #[inline]
    pub(crate) fn unhide(&self, node: &HiddenJob) -> bool {
        debug_assert!(
            node.flags() & (EXPOSED | SNATCHED) != 0 || ptr::eq(self.private().newest(), node),
            "hidden jobs nest"
        );
        if node.flags() == 0 {
            // Never handed out (the common case): one test, and the unlink.
            return self.private().pop(node) || !self.private().settle_one(node);
        }
        self.unhide_handed_out(node)
    }

    /// [`WorkerThread::unhide`] for a node that was published, exposed or snatched.
    #[cold]
    fn unhide_handed_out(&self, node: &HiddenJob) -> bool {
        let flags = node.flags();
        if flags & (EXPOSED | SNATCHED) != 0 {
            if flags & EAGER != 0 {
                self.eager.set(self.eager.get() - 1);
            }
            return false;
        }
        // Published, so never snatched; but a thief may be reading it.
        if !self.private().pop(node) {
            self.private().settle();
        }
        flags & PUBLISHED == 0 || self.unpublish(node)
    }

    /// Exposes this worker's private `join` halves if some worker looks for work.
    #[inline]
    pub(crate) fn expose_if_hungry(&self) {
        if self.registry.hungry.load(Ordering::Relaxed) > 0 {
            self.expose_hidden();
        }
    }

    /// Pushes every hidden job onto the deque, oldest (largest) first.
    pub(crate) fn expose_hidden(&self) {
        let (mut node, quiet) = self.private().pop_all();
        if node.is_null() {
            return;
        }
        if !quiet {
            self.private().settle();
        }
        let mut nodes = Vec::new();
        // SAFETY: hidden nodes live in the frames of joins still running on this thread
        // (each removes its node, or finds it exposed, before it returns), and no thief
        // reads them any more (settled).
        while let Some(hidden) = unsafe { node.as_ref() } {
            nodes.push(hidden);
            node = hidden.below();
        }
        for hidden in nodes.into_iter().rev() {
            if !quiet && self.private().found_snatched(hidden) {
                // Its thief runs it; its join waits for it.
                continue;
            }
            hidden.set_flags(hidden.flags() | EXPOSED);
            if hidden.flags() & PUBLISHED != 0 && !self.unpublish(hidden) {
                // Claimed by an idle worker, which runs it.
                continue;
            }
            self.deque.push(hidden.hand_out(&self.registry, self.index));
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
            for job in self.registry.slots[self.index].take_handoff() {
                self.deque.push(job);
            }
            if self.resume_ready() {
                idle_rounds = 0;
                continue;
            }
            if let Some(job) = self.find_work() {
                self.set_hungry(false);
                // SAFETY: we just took the job from a deque.
                unsafe { self.execute(job) };
                idle_rounds = 0;
                continue;
            }
            self.set_hungry(true);
            // A dropped pool's workers leave as soon as they find nothing to do and no
            // spawned job is left (not after spinning: a program that builds and drops
            // many pools would have their threads yielding beside it). Suspended fibers
            // wait for work still in flight: stay until they finish.
            if self.registry.may_exit() && self.fibers.live() == 0 {
                self.set_hungry(false);
                return;
            }
            if idle_rounds < SPIN_ROUNDS {
                idle_rounds += 1;
                thread::yield_now();
                continue;
            }
            idle_rounds = 0;
            if self.index >= self.registry.num_threads && self.fibers.live() == 0 {
                self.set_hungry(false);
                match self.registry.park_spare(self) {
                    SpareOutcome::Needed => {}
                    SpareOutcome::Resumed => continue,
                    SpareOutcome::Terminated => return,
                }
            }
            if let Some(job) = self.snatch() {
                self.set_hungry(false);
                // SAFETY: we just snatched the job, and run it once.
                unsafe { self.execute(job) };
                // Its owner may keep more halves private: look again as soon as idle.
                idle_rounds = SPIN_ROUNDS;
                continue;
            }
            // Asleep is not hungry: `join` keeps its halves private (and publishes one,
            // which wakes a sleeper) rather than paying for pushes nobody takes.
            if crate::sync::publishing() {
                self.set_hungry(false);
            }
            self.sleep_idle(None);
        }
    }

    /// Resumes one ready fiber, if any. True if it did.
    #[inline]
    fn resume_ready(&self) -> bool {
        match self.registry.slots[self.index].ready.pop() {
            Some(fiber) => {
                self.set_hungry(false);
                self.fibers
                    .resume((&self.registry.trace, self.index), fiber);
                true
            }
            None => false,
        }
    }

    /// Runs `job` on a fresh fiber (from a wait loop: never on top of the waiting frame).
    fn execute_on_fiber(&self, job: JobRef) {
        let worker = WorkerRef(self);
        self.fibers
            .start((&self.registry.trace, self.index), move || {
                let worker = worker;
                // SAFETY: the fiber runs on this worker's thread (or, under loom, on a
                // thread that runs only while this worker waits for it), while the worker
                // is alive: it exits only once it has no fiber left.
                let worker = unsafe { &*worker.0 };
                set_current(worker);
                // SAFETY: the job was taken from a deque by this worker and has not run.
                unsafe { worker.execute(job) };
            });
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

    /// Any job: own deque, then jobs broadcast to this worker, then other workers, then
    /// the injector.
    pub(crate) fn find_work(&self) -> Option<JobRef> {
        self.pop()
            .or_else(|| self.registry.slots[self.index].take_broadcast())
            .or_else(|| self.steal())
    }

    /// A job of this worker's own (its deque, then what was broadcast to it), for
    /// `yield_local`.
    pub(crate) fn find_local_work(&self) -> Option<JobRef> {
        self.pop()
            .or_else(|| self.registry.slots[self.index].take_broadcast())
    }

    /// True if this worker has jobs of its own not started yet (queued, broadcast to
    /// it, or `join` halves it keeps private).
    pub(crate) fn has_pending_tasks(&self) -> bool {
        !self.deque.is_empty()
            || !self.private().newest().is_null()
            || self.registry.has_broadcast_for(self.index)
    }

    /// Steals a job from another worker (starting at a random one), then the injector.
    fn steal(&self) -> Option<JobRef> {
        let slots = self.registry.started_slots();
        loop {
            let mut retry = false;
            let start = self.next_random(slots.len());
            for k in 0..slots.len() {
                let victim = (start + k) % slots.len();
                if victim == self.index {
                    continue;
                }
                let Some(stealer) = slots[victim].stealer.get() else {
                    continue;
                };
                match stealer.steal() {
                    Steal::Success(job) => return Some(job),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            match self.registry.injector.steal() {
                Steal::Success(job) => return Some(job),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            // Last, the halves other workers keep private but publish (see `HiddenJob`).
            for k in 0..slots.len() {
                let victim = (start + k) % slots.len();
                if victim != self.index {
                    if let Some(job) = slots[victim].claim_published() {
                        // Its owner may keep halves private below the one we took, and
                        // block on them: let a sleeper look for them (see `snatch.rs`).
                        if !slots[victim].private.newest().is_null() {
                            self.registry
                                .sleep
                                .hint_work(|w| self.registry.unpark_worker(w));
                        }
                        return Some(job);
                    }
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// Takes the oldest private half of some other worker (see `snatch.rs`), for a
    /// worker about to sleep: a worker that runs user code without calling into weft
    /// may keep halves private that it waits for.
    fn snatch(&self) -> Option<JobRef> {
        if !crate::sync::snatching() || crate::sync::mutant("snatch_never") {
            return None;
        }
        let slots = self.registry.started_slots();
        let start = self.next_random(slots.len());
        (0..slots.len())
            .map(|k| (start + k) % slots.len())
            .filter(|&victim| victim != self.index)
            .find_map(|victim| slots[victim].private.snatch(&self.registry, victim))
    }

    /// Waits until `latch` is set (see the module docs): suspends the current fiber, or
    /// runs a wait loop on the worker's own stack.
    pub(crate) fn wait_until(&self, latch: &WorkerLatch<'_>) {
        // Most waits end within microseconds (the owner is close to done): spinning
        // briefly is cheaper than a fiber switch, and keeps this worker on the work it
        // was doing instead of starting unrelated work that may collide again.
        for _ in 0..WAIT_SPINS {
            if latch.probe() {
                return;
            }
            std::hint::spin_loop();
        }
        if latch.probe() {
            return;
        }
        // The frame we wait in owns a job or latch that another thread may be using:
        // unwinding out of it would free that memory under the other thread's feet.
        let window = AbortIfPanic("a `join`, `scope` or `install` wait");
        // What this worker kept private must be runnable while it waits.
        self.expose_hidden();
        if std::thread::panicking() || self.in_blocking() {
            // No fiber switch while unwinding (the panic count is the thread's) or
            // inside a blocking call (the thread stands aside for a spare meanwhile).
            self.sleep_blocked(latch);
        } else if let Some(fiber) = self.fibers.current() {
            let _span = (self.registry.trace).span(self.index, || crate::trace::SpanKind::Wait);
            if latch.prepare_suspend(fiber) {
                self.fibers.suspend_current();
            }
            debug_assert!(
                latch.probe(),
                "a suspended waiter is resumed once its latch is set"
            );
        } else {
            self.wait_loop(latch);
        }
        window.disarm();
    }

    /// A wait on the worker's own stack: run everything else on fibers meanwhile.
    fn wait_loop(&self, latch: &WorkerLatch<'_>) {
        let _span = (self.registry.trace).span(self.index, || crate::trace::SpanKind::Wait);
        let mut idle_rounds = 0;
        // An adopted thread leaves the pool's code when its wait is over, and nobody
        // else may resume its fibers: it stays until the fibers it started finish.
        let drain_fibers = self.registry.is_adopted(self.index);
        while !latch.probe() || (drain_fibers && self.fibers.live() > 0) {
            if self.resume_ready() {
                idle_rounds = 0;
                continue;
            }
            if let Some(job) = self.find_work() {
                self.set_hungry(false);
                self.execute_on_fiber(job);
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
            if let Some(job) = self.snatch() {
                self.set_hungry(false);
                self.execute_on_fiber(job);
                idle_rounds = SPIN_ROUNDS;
                continue;
            }
            if crate::sync::publishing() {
                self.set_hungry(false);
            }
            // Past a set latch (draining fibers), sleep until a fiber is ready. Only
            // then: a latch set after the loop's check must still stop this sleep,
            // which `sleep_idle` does only if it is given the latch.
            let drained_latch = drain_fibers && latch.probe();
            self.sleep_idle(if drained_latch { None } else { Some(latch) });
        }
        self.set_hungry(false);
    }

    /// Sleeps in the idle list until new work arrives (or `latch` is set).
    fn sleep_idle(&self, latch: Option<&WorkerLatch<'_>>) {
        let woken = &self.registry.slots[self.index].woken;
        // A wake-up left from an earlier wait is no news now (this wait's latch is
        // checked again below, after the announcement).
        woken.store(false, Ordering::SeqCst);
        if let Some(latch) = latch {
            if !latch.prepare_sleep() {
                return;
            }
        }
        let sleep = &self.registry.sleep;
        sleep.register(self.index);
        // The mutant (loom builds only) skips the re-check after announcing sleep.
        // An idle worker of a dropped pool wakes to exit; a waiting one waits for its
        // latch whatever the pool does (an adopted building thread never exits, and
        // would spin here for as long as it waits).
        let wake_now = (latch.is_none() && self.registry.may_exit())
            || latch.is_some_and(|l| l.probe())
            || self.registry.slots[self.index].ready.any()
            || self.registry.has_broadcast_for(self.index)
            || (self.registry.has_work() && !crate::sync::mutant("sleep_no_recheck"));
        if !wake_now {
            let _span = (self.registry.trace).span(self.index, || crate::trace::SpanKind::Idle);
            self.stop_running();
            self.registry.enter_idle();
            self.registry.slots[self.index].parker.park();
            self.registry.leave_idle();
            // Up and counted as running again: a wake-up for our wait is no longer news.
            woken.store(false, Ordering::SeqCst);
            self.start_running();
        }
        sleep.unregister(self.index);
        if let Some(latch) = latch {
            latch.finish_sleep();
        }
    }

    /// A wait that may not switch fibers (see the module docs): block the thread until
    /// `latch` is set.
    fn sleep_blocked(&self, latch: &WorkerLatch<'_>) {
        if !latch.prepare_sleep() {
            return;
        }
        let _span = (self.registry.trace).span(self.index, || {
            crate::trace::SpanKind::Blocked(crate::trace::BlockedOn::RestrictedWait)
        });
        self.blocked(|| {
            while !latch.probe() {
                self.registry.slots[self.index].parker.park();
            }
        });
        latch.finish_sleep();
    }

    /// True while this worker runs code inside [`WorkerThread::blocked`].
    pub(crate) fn in_blocking(&self) -> bool {
        self.blocking_depth.get() > 0
    }

    /// Runs `f` counted as blocked (see [`Registry::enter_blocked`]). Reentrant: a
    /// blocking call inside another counts once, so the counts and the jobserver
    /// permit stay exact.
    pub(crate) fn blocked<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Leave<'a>(&'a WorkerThread);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.blocking_depth.set(0);
                self.0.registry.leave_blocked(self.0);
            }
        }
        if self.in_blocking() {
            return f();
        }
        self.set_hungry(false);
        self.registry.enter_blocked(self);
        self.blocking_depth.set(1);
        let _leave = Leave(self);
        f()
    }
}
