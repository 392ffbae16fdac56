//! A `join`'s second half: a job on the joining frame that is set up for other threads
//! only when it leaves its owner.
//!
//! Most second halves never leave the worker that made them (`join.rs`): it runs them
//! inline after the first half. So the hot path writes only what the owner needs to find
//! and run the half later (the closure, the run function, the context, the link to the
//! next older half); the latch a thief sets and the slot its result goes to are
//! written by the owner when it hands the half out (publishes it for idle workers, or
//! pushes it onto its deque), which it does in cold paths and always before another
//! thread can see the half.

use std::any::Any;
use std::cell::Cell;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr;

use super::context::Context;
use super::job::JobRef;
use super::latch::{Latch, WorkerLatch};
use super::registry::Registry;
use super::unwind::catch;
use crate::sync::atomic::{AtomicU8, Ordering};
use crate::sync::UnsafeCell;

/// The type-erased head of a [`JoinHalf`]: what the owner's list of private halves and
/// its slot (`Slot::published`) point to.
///
/// Hidden halves form a list through the frames of the joins that made them, newest
/// first. They are exposed (pushed onto the deque, oldest first) when a later `join`
/// sees a hungry worker, when this worker starts looking for work, and when it waits,
/// so a thief can still take them; a join whose second half is still hidden when its
/// first half returns runs it inline, like a one-thread pool.
///
/// One hidden half per worker is also *published* in its slot: the oldest one hidden
/// while the slot was free. An idle worker that finds no other work claims it there
/// with one CAS, and its owner, coming back for it, finds it gone and waits for it like
/// a stolen job. So a hidden half never depends on its owner's next call into weft to
/// reach an idle worker: a first half that computes for seconds, or waits on a barrier
/// for the second, does not keep the second from running. While the slot is free, the
/// first few halves a worker hides are pushed onto its deque instead ([`EAGER`], see
/// `WorkerThread::offer`), so nested first halves that block reach idle workers too;
/// the rest an idle worker can snatch from the list itself (see `snatch.rs`).
#[repr(C)]
pub(crate) struct HiddenJob {
    /// How to run the half, and in which context: read by the owner and, after a claim,
    /// by the claimer; loom checks that the node outlives the claimer's read (see the
    /// `Drop` impl).
    entry: UnsafeCell<Entry>,
    /// Written by the owner before the node joins its list (see `snatch.rs`), read by
    /// the owner and by a thief walking the list.
    below: UnsafeCell<*const HiddenJob>,
    /// [`EXPOSED`], [`PUBLISHED`], [`EAGER`], [`SNATCHED`] and [`HANDED_OUT`]: the
    /// owner's own record (one byte: `unhide` tells a half that was never handed out by
    /// one test against zero). Thieves never read it.
    flags: Cell<u8>,
    /// What a thief walking the owner's list may know: [`share::PRIVATE`],
    /// [`share::OFFERED`] (published: claimed through the slot or not at all) or
    /// [`share::SNATCHED`]. Written by the owner only before the node joins the list.
    share: AtomicU8,
    /// Set by [`HiddenJob::hand_out`]; uninitialised until then.
    latch: UnsafeCell<MaybeUninit<WorkerLatch<'static>>>,
}

#[derive(Clone, Copy)]
struct Entry {
    execute_fn: unsafe fn(*const ()),
    ctx: Context,
}

/// `HiddenJob::flags`: the node was pushed onto the deque.
pub(crate) const EXPOSED: u8 = 1;
/// `HiddenJob::flags`: pushed by `hide` itself, never hidden (see
/// `WorkerThread::offer`); counted in the worker's `eager` until its join returns.
pub(crate) const EAGER: u8 = 8;
/// `HiddenJob::flags`: the owner published this node in its slot (it may have been
/// claimed since).
pub(crate) const PUBLISHED: u8 = 2;
/// `HiddenJob::flags`: the latch is initialised (the half was handed out at least once).
const HANDED_OUT: u8 = 4;
/// `HiddenJob::flags`: a thief snatched the node from the owner's list (see
/// `snatch.rs`), and the owner found out; like [`EXPOSED`], it is out of the list.
pub(crate) const SNATCHED: u8 = 16;

/// The values of `HiddenJob::share`.
pub(crate) mod share {
    /// Kept private: a thief walking the owner's list may snatch it.
    pub(crate) const PRIVATE: u8 = 0;
    /// Published in the owner's slot: only a claim through the slot may take it.
    pub(crate) const OFFERED: u8 = 1;
    /// Taken by a thief walking the owner's list.
    pub(crate) const SNATCHED: u8 = 2;
}

impl HiddenJob {
    /// The next older hidden half of the same worker, or null.
    #[inline]
    pub(crate) fn below(&self) -> *const HiddenJob {
        // SAFETY: written only by `set_below`, by the owner, before the node joins its
        // list, so before any thief can read it (see `snatch.rs`).
        self.below.with(|below| unsafe { *below })
    }

    /// Links the node above `below`, before it joins its owner's list.
    #[inline]
    pub(crate) fn set_below(&self, below: *const HiddenJob) {
        // SAFETY: the owner writes this before the node joins its list, and nobody
        // reads it before that.
        self.below.with_mut(|slot| unsafe { *slot = below });
    }

    /// What a thief walking the owner's list may know (see [`share`]).
    pub(crate) fn share(&self) -> &AtomicU8 {
        &self.share
    }

    /// Marks the node as published, before it joins its owner's list: thieves walking
    /// the list leave it to the slot.
    pub(crate) fn mark_offered(&self) {
        self.share.store(share::OFFERED, Ordering::Relaxed);
    }

    /// The owner found out that a thief snatched the node: it is out of the list,
    /// handed out (its latch was written by the thief) and waited for like a stolen job.
    pub(crate) fn mark_snatched(&self) {
        self.flags.set(self.flags.get() | SNATCHED | HANDED_OUT);
    }

    pub(crate) fn flags(&self) -> u8 {
        self.flags.get()
    }

    pub(crate) fn set_flags(&self, flags: u8) {
        self.flags.set(flags);
    }

    /// Makes the half runnable by another worker of `registry` (whose worker `owner` is
    /// this thread, the half's owner) and returns the job to hand out. Called by the
    /// owner before the half is published or pushed, never after another thread may
    /// have it.
    pub(crate) fn hand_out(&self, registry: &Registry, owner: usize) -> JobRef {
        let flags = self.flags.get();
        if flags & HANDED_OUT == 0 {
            // SAFETY: only the owner writes the latch here, once (`HANDED_OUT`), before
            // any other thread can reach the half.
            unsafe { self.write_latch(registry, owner) };
            self.flags.set(flags | HANDED_OUT);
        }
        self.job()
    }

    /// Writes the latch that worker `owner` of `registry` waits on.
    ///
    /// # Safety
    /// No other thread reads or writes the latch meanwhile.
    unsafe fn write_latch(&self, registry: &Registry, owner: usize) {
        // SAFETY: the registry outlives the latch: the latch lives in a `join` frame
        // on one of its workers, each of which holds the registry alive, and the
        // thread that sets it is a worker of the same registry.
        let registry: &'static Registry = unsafe { &*(registry as *const Registry) };
        // SAFETY: forwarded from the caller.
        self.latch
            .with_mut(|latch| unsafe { (*latch).write(WorkerLatch::new(registry, owner)) });
    }

    /// The job, for the owner (which wrote the entry).
    fn job(&self) -> JobRef {
        // SAFETY: only `Drop` writes the cell, and it has `&mut self`.
        let entry = self.entry.with(|entry| unsafe { *entry });
        // SAFETY: `self` heads a `JoinHalf` whose `execute` is `entry.execute_fn`.
        unsafe {
            JobRef::new(
                self as *const Self as *const (),
                entry.execute_fn,
                entry.ctx,
            )
        }
    }

    /// The job of a node this thread claimed from a slot.
    ///
    /// # Safety
    /// `node` was published and the caller's CAS took it out of the slot: its owner then
    /// waits for the job's latch before the node goes out of scope (the node must stay
    /// in scope for the whole wait, since our read may come after the owner has found
    /// the node claimed).
    pub(crate) unsafe fn claimed_job(node: *const HiddenJob) -> JobRef {
        // SAFETY: forwarded; the entry was written before the node was published, and
        // is only written again by the node's end (`Drop`), after the claimed job has
        // run.
        let entry = unsafe { (*node).entry.with(|entry| *entry) };
        // SAFETY: as in `job`.
        unsafe { JobRef::new(node as *const (), entry.execute_fn, entry.ctx) }
    }

    /// The job of a node this thread snatched from its owner's list (see `snatch.rs`):
    /// writes the latch that the owner, worker `owner` of `registry`, will wait for.
    ///
    /// # Safety
    /// The caller set `share` to [`share::SNATCHED`] while it held the owner's list
    /// (so the owner neither runs the node nor reads its latch until it finds out, and
    /// then waits for the latch before the node goes out of scope), and no other thread
    /// has the node.
    pub(crate) unsafe fn snatched_job(
        node: *const HiddenJob,
        registry: &Registry,
        owner: usize,
    ) -> JobRef {
        // SAFETY: forwarded: nobody else writes or reads the latch before the owner
        // finds the node snatched, which happens after our release of the list.
        unsafe { (*node).write_latch(registry, owner) };
        // SAFETY: forwarded, as for a claimed node.
        unsafe { Self::claimed_job(node) }
    }

    /// The latch, once the half has been handed out (not checked: a thief must not
    /// read the owner's flags).
    fn latch(&self) -> &WorkerLatch<'static> {
        // SAFETY: written by `hand_out` before any reader (the owner after handing the
        // half out, or a thread that got it from the owner through the deque or slot),
        // and never written again while the node lives.
        self.latch
            .with(|latch| unsafe { (*latch).assume_init_ref() })
    }

    /// The end of the node's storage, as a write loom can order against a claimer's
    /// read of the entry (a no-op in normal builds).
    pub(crate) fn end_of_storage(&self) {
        self.entry.with_mut(|_| {});
    }
}

impl Drop for HiddenJob {
    fn drop(&mut self) {
        self.end_of_storage();
        if cfg!(loom) && self.flags.get() & HANDED_OUT != 0 {
            // Loom tracks the latch's atomics as objects: end them with the node.
            // SAFETY: initialised (`HANDED_OUT`), dropped once, here.
            self.latch
                .with_mut(|latch| unsafe { (*latch).assume_init_drop() });
        }
    }
}

/// A `join`'s second half on the joining frame: the closure, and where a thief puts its
/// outcome. Starts with its [`HiddenJob`] head, so a pointer to the head is a pointer to
/// the half.
#[repr(C)]
pub(crate) struct JoinHalf<F, R> {
    head: HiddenJob,
    /// Taken exactly once: by `run_inline` or by `execute`.
    func: UnsafeCell<ManuallyDrop<F>>,
    /// Written by `execute` (on whichever thread runs the half) before it sets the latch.
    result: UnsafeCell<MaybeUninit<Result<R, Box<dyn Any + Send>>>>,
}

impl<F: FnOnce() -> R + Send, R: Send> JoinHalf<F, R> {
    /// A half for `func`, to run in context `ctx`.
    #[inline]
    pub(crate) fn new(func: F, ctx: Context) -> Self {
        JoinHalf {
            head: HiddenJob {
                entry: UnsafeCell::new(Entry {
                    execute_fn: Self::execute,
                    ctx,
                }),
                below: UnsafeCell::new(ptr::null()),
                flags: Cell::new(0),
                share: AtomicU8::new(share::PRIVATE),
                latch: UnsafeCell::new(MaybeUninit::uninit()),
            },
            func: UnsafeCell::new(ManuallyDrop::new(func)),
            result: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    pub(crate) fn head(&self) -> &HiddenJob {
        &self.head
    }

    /// The latch of a half that was handed out (see [`HiddenJob::hand_out`]).
    pub(crate) fn latch(&self) -> &WorkerLatch<'static> {
        debug_assert!(self.head.flags() & HANDED_OUT != 0, "a handed-out half");
        self.head.latch()
    }

    /// Runs the closure on the owner: the half was never handed out, or was taken back
    /// from the deque before anyone ran it. Consumes the closure: call once, and never
    /// after the half may have run elsewhere.
    #[inline]
    pub(crate) fn run_inline(&self) -> Result<R, Box<dyn Any + Send>> {
        // SAFETY: no other thread has the half (caller's contract) and the closure has
        // not been taken: read it out once.
        let func = self
            .func
            .with_mut(|f| unsafe { ManuallyDrop::take(&mut *f) });
        catch(func)
    }

    /// The outcome of a half that ran elsewhere, once its latch is set. Call once.
    pub(crate) fn take_result(&self) -> Result<R, Box<dyn Any + Send>> {
        debug_assert!(self.latch().probe(), "the half has run");
        // SAFETY: the latch is set, so `execute` wrote the result and will not touch the
        // half again; read out once.
        self.result.with_mut(|r| unsafe { (*r).assume_init_read() })
    }

    /// Runs a handed-out half on the thread that took it.
    unsafe fn execute(this: *const ()) {
        // SAFETY: a JobRef of a half points to its head, which starts the half
        // (`repr(C)`); the owner keeps it alive until the latch is set below.
        let this = unsafe { &*(this as *const Self) };
        // SAFETY: only the thread that took the job runs it, once, and the owner no
        // longer runs it inline.
        let func = this
            .func
            .with_mut(|f| unsafe { ManuallyDrop::take(&mut *f) });
        let outcome = catch(func);
        // SAFETY: as above; the owner reads the result only after the latch is set.
        this.result.with_mut(|r| unsafe { (*r).write(outcome) });
        // SAFETY: the latch was initialised when the half was handed out, and lives in
        // `this`, which the owner keeps alive until it sees it set.
        unsafe { WorkerLatch::set(this.head.latch() as *const WorkerLatch<'static>) };
    }
}
