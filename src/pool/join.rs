//! `join`: run two closures, potentially in parallel.
//!
//! The calling worker pushes the second closure as a job onto its deque, runs the first
//! itself, then takes the second back and runs it inline unless another worker stole
//! it, in which case it waits for it (see `worker.rs` for what a wait may run).
//!
//! Work is exposed on demand. When no worker is looking for work (the registry's
//! `hungry` count is zero: one relaxed load), nobody could steal the second closure, so
//! it is kept private (`HiddenJob`, in `half.rs`) instead of pushed, and run inline
//! after the first unless it was exposed meanwhile: by a later `join` that saw a hungry
//! worker, or because this worker started looking for work or blocked. A busy pool's `join` then
//! costs little more than two calls, and no fence.
//!
//! A private half is not out of idle workers' reach: each worker also publishes its
//! oldest private half in its slot, where a worker that finds nothing else to do claims
//! it with one CAS (the owner, coming back, finds it gone and waits for it). So a first
//! half that computes for seconds, or blocks on a raw `Barrier` or channel until the
//! second half runs, does not keep the second from an idle worker. One slot is not
//! enough when such first halves nest (`join(|| join(|| wait_for_c(), || c()), ||
//! other())`: the outer half would take the slot and the inner one stay private), so
//! the first halves hidden while the slot is free are pushed onto the deque instead, up
//! to one fewer than the pool's threads (at most eight) outstanding at once; the next
//! one is published. Deeper private halves are reached by *snatching* (`snatch.rs`): a
//! worker about to sleep takes the oldest half another worker keeps private, through a
//! handshake whose cost falls on the thief (a `membarrier` system call on Linux) and
//! leaves the owner's unlink a plain store and load. Where no such fence exists, a
//! first half nested deeper than the bound above that blocks in user code on a half
//! its own worker keeps private can still hang, where rayon (which pushes every half)
//! would not.
//!
//! The second half is built for that: a [`JoinHalf`] on this frame whose latch and
//! result slot, which only another thread needs, are written when the owner hands it
//! out (publishes or pushes it), not at every `join`. A `join` whose half stays private
//! writes the closure, its run function and context, and one link, and checks one word
//! for thieves when it unlinks it (70 instructions per `join` of `fib` under
//! callgrind, against 51 for a one-thread pool's `join`, which runs both halves in
//! order).

use super::context;
use super::half::JoinHalf;
use super::job::JobRef;
use super::registry::global_registry;
use super::unwind::{catch, drop_payload};
use super::worker::WorkerThread;
use crate::sync::atomic::Ordering;

/// Runs `oper_a` and `oper_b`, potentially in parallel, and returns both results.
///
/// On a worker of a pool, `oper_b` may be stolen by another worker while this thread
/// runs `oper_a`. Called from outside any pool, both run on the global pool. Both
/// closures always run to completion; if either panics, the panic is re-raised here
/// afterwards (the first closure's panic wins when both do).
///
/// ```
/// fn fib(n: u64) -> u64 {
///     if n < 2 { return n; }
///     let (a, b) = weft::join(|| fib(n - 1), || fib(n - 2));
///     a + b
/// }
/// assert_eq!(fib(20), 6765);
/// ```
pub fn join<A, B, RA, RB>(oper_a: A, oper_b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    // SAFETY: null or this thread's live WorkerThread.
    match unsafe { WorkerThread::current().as_ref() } {
        Some(worker) => join_on_worker(worker, oper_a, oper_b),
        None => global_registry().in_worker(|worker| join_on_worker(worker, oper_a, oper_b)),
    }
}

/// What [`join_context`] tells each of its closures about where it runs.
#[derive(Clone, Copy, Debug)]
pub struct FnContext {
    migrated: bool,
}

impl FnContext {
    /// True if the closure runs on another thread than the one that called
    /// [`join_context`]: for both closures when `join_context` was called from outside
    /// any pool (they then run on a worker of the global pool), and for the second
    /// when another worker took it. rayon's parallel iterators split work further when
    /// a half has migrated.
    #[inline]
    pub fn migrated(&self) -> bool {
        self.migrated
    }
}

/// [`join`], telling each closure whether it runs on another thread than the caller's
/// (see [`FnContext::migrated`]).
///
/// ```
/// let (a, b) = weft::join_context(|ctx| ctx.migrated(), |ctx| ctx.migrated());
/// // Called from outside any pool: both closures ran on the global pool.
/// assert!(a && b);
/// ```
pub fn join_context<A, B, RA, RB>(oper_a: A, oper_b: B) -> (RA, RB)
where
    A: FnOnce(FnContext) -> RA + Send,
    B: FnOnce(FnContext) -> RB + Send,
    RA: Send,
    RB: Send,
{
    fn on_worker<A, B, RA, RB>(
        worker: &WorkerThread,
        oper_a: A,
        oper_b: B,
        injected: bool,
    ) -> (RA, RB)
    where
        A: FnOnce(FnContext) -> RA + Send,
        B: FnOnce(FnContext) -> RB + Send,
        RA: Send,
        RB: Send,
    {
        let home = worker as *const WorkerThread as usize;
        join_on_worker(
            worker,
            move || oper_a(FnContext { migrated: injected }),
            move || {
                let migrated = injected || WorkerThread::current() as usize != home;
                oper_b(FnContext { migrated })
            },
        )
    }
    // SAFETY: null or this thread's live WorkerThread.
    match unsafe { WorkerThread::current().as_ref() } {
        Some(worker) => on_worker(worker, oper_a, oper_b, false),
        None => global_registry().in_worker(|worker| on_worker(worker, oper_a, oper_b, true)),
    }
}

#[inline]
fn join_on_worker<A, B, RA, RB>(worker: &WorkerThread, oper_a: A, oper_b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    if worker.solo {
        return join_in_order(oper_a, oper_b);
    }
    // The second half stays in this frame until it has run: we either run it inline
    // (hidden, or taken back from the deque), or wait for its latch before returning
    // (also if `oper_a` panics). That holds whoever ends up with it: an idle worker that
    // claims it reads the job out of it *after* its CAS, possibly after our `unhide`
    // has already found it gone, and sets the latch only after that read.
    let half = JoinHalf::new(oper_b, context::current());
    let (result_a, job_b) = if worker.registry.hungry.load(Ordering::Relaxed) == 0 {
        // Nobody could steal it now: keep it private unless someone asks meanwhile.
        worker.hide(half.head());
        let result_a = catch(oper_a);
        if worker.unhide(half.head()) {
            return combine(result_a, half.run_inline());
        }
        // Exposed or published meanwhile, so already handed out: this reads its job.
        (
            result_a,
            half.head().hand_out(&worker.registry, worker.index),
        )
    } else {
        // Someone looks for work: expose what we kept private (older, so larger) too.
        worker.expose_hidden();
        let job_b = half.head().hand_out(&worker.registry, worker.index);
        worker.push(job_b);
        (catch(oper_a), job_b)
    };
    let result_b = if take_back_or_wait(worker, &half, job_b) {
        half.run_inline()
    } else {
        half.take_result()
    };
    combine(result_a, result_b)
}

/// After the first half: returns true if the second half was taken back from the deque
/// (the caller runs it), false once the worker that stole it has finished it.
fn take_back_or_wait<B, RB>(worker: &WorkerThread, half: &JoinHalf<B, RB>, job_b: JobRef) -> bool
where
    B: FnOnce() -> RB + Send,
    RB: Send,
{
    let latch = half.latch();
    while !latch.probe() {
        match worker.pop() {
            Some(job) if job == job_b => return true,
            Some(job) => {
                // Pushed after ours by code that has returned (a spawn into an outer
                // scope): leave it to the wait, which runs it on a fiber if nobody else
                // takes it, never on top of this frame.
                worker.push(job);
                worker.wait_until(latch);
            }
            None => worker.wait_until(latch),
        }
    }
    false
}

/// Both closures in order on this thread, with `join`'s panic rules.
fn join_in_order<A, B, RA, RB>(oper_a: A, oper_b: B) -> (RA, RB)
where
    A: FnOnce() -> RA,
    B: FnOnce() -> RB,
{
    let result_a = catch(oper_a);
    let result_b = catch(oper_b);
    combine(result_a, result_b)
}

pub(crate) type Outcome<T> = Result<T, Box<dyn std::any::Any + Send>>;

/// Both results, or the first panic re-raised (the second's payload is dropped first,
/// safely: its `Drop` must not panic while we unwind).
#[inline]
pub(crate) fn combine<RA, RB>(a: Outcome<RA>, b: Outcome<RB>) -> (RA, RB) {
    match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(payload), b) => {
            if let Err(second) = b {
                drop_payload(second);
            }
            std::panic::resume_unwind(payload)
        }
        (Ok(_), Err(payload)) => std::panic::resume_unwind(payload),
    }
}
