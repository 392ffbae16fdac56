//! A worker's fibers: how a wait gives up its stack without giving up its thread.
//!
//! A job normally runs straight on its worker's own stack. When code must wait (a join
//! half stolen by another worker, a scope's jobs, a query computed elsewhere, another
//! pool's `install`) and what it waits for is not done:
//!
//! - **on a fiber**, the waiter records the fiber on what it waits for and *suspends*
//!   it: control returns to whoever resumed the fiber (always the worker's own stack).
//!   When the awaited thing completes, its completer makes the fiber *ready*: it is
//!   queued on its own worker ([`ReadyFibers`]), which resumes it at its next job
//!   boundary or wait. Fibers never move between threads: code on a fiber may hold
//!   `!Send` values and thread-local references across a wait.
//! - **on the worker's own stack**, the waiter runs a *wait loop*: it resumes ready
//!   fibers and runs other jobs, each on a fresh fiber, until its wait is over. Nothing
//!   runs on top of the waiting frame itself, so a job that comes to wait for something
//!   that needs the waiting frame suspends instead of deadlocking it.
//!
//! So no wait holds an OS thread, and no wait creates a dependency the query engine
//! cannot see. Fibers are created lazily (a job that never waits on the worker's own
//! stack costs no switch) and their stacks are reused ([`FiberSet`]).
//!
//! Every switch saves and restores the thread-local state that belongs to the code,
//! not the thread (the current context word), on both sides. Before a switch the
//! worker exposes its private `join` halves, so the list of them (threaded through the
//! frames of one stack) never mixes two stacks.

use std::cell::{Cell, RefCell};

use super::context::{self, Context};
use crate::sync::fiber::{Fiber, FiberStack, Resumed, Suspender};
use crate::trace::{SpanKind, Tracer};

/// The fibers of one worker whose waits are over, pushed by any thread.
pub(crate) type ReadyFibers = super::queue::FlaggedQueue<usize>;

/// A suspended fiber and the trace spans it had open.
type Suspended = (Fiber, Vec<SpanKind>);

/// Where a worker's trace spans go: its pool's tracer and its lane.
pub(crate) type Lane<'a> = (&'a Tracer, usize);

/// The fiber running on this thread right now.
#[derive(Clone)]
struct Running {
    id: usize,
    suspender: Suspender,
}

/// One worker's fibers: the suspended ones, the one running, and spare stacks.
/// Touched only by the worker's own thread.
pub(crate) struct FiberSet {
    stack_size: usize,
    spare_stacks: RefCell<Vec<FiberStack>>,
    /// Suspended fibers by id, with the trace spans they had open; `None` for a free
    /// id or one that is running.
    suspended: RefCell<Vec<Option<Suspended>>>,
    free_ids: RefCell<Vec<usize>>,
    running: RefCell<Option<Running>>,
    /// Fibers started and not finished (suspended, ready or running).
    live: Cell<usize>,
}

/// Spare stacks a worker keeps for its next fibers.
const SPARE_STACKS: usize = 16;

impl FiberSet {
    pub(crate) fn new(stack_size: usize) -> Self {
        FiberSet {
            stack_size,
            spare_stacks: RefCell::new(Vec::new()),
            suspended: RefCell::new(Vec::new()),
            free_ids: RefCell::new(Vec::new()),
            running: RefCell::new(None),
            live: Cell::new(0),
        }
    }

    /// The id of the fiber running now, or `None` on the worker's own stack.
    #[inline]
    pub(crate) fn current(&self) -> Option<usize> {
        self.running.borrow().as_ref().map(|r| r.id)
    }

    /// Fibers started and not finished.
    pub(crate) fn live(&self) -> usize {
        self.live.get()
    }

    /// Starts `body` on a new fiber and runs it until it suspends or finishes. `lane` is
    /// where its trace spans go (see [`FiberSet::resume`]).
    pub(crate) fn start(&self, lane: Lane<'_>, body: impl FnOnce() + Send + 'static) {
        let stack = match self.spare_stacks.borrow_mut().pop() {
            Some(stack) => stack,
            None => FiberStack::new(self.stack_size)
                .unwrap_or_else(|err| panic!("weft: cannot allocate a fiber stack: {err}")),
        };
        let id = self.free_ids.borrow_mut().pop().unwrap_or_else(|| {
            let mut suspended = self.suspended.borrow_mut();
            suspended.push(None);
            suspended.len() - 1
        });
        self.live.set(self.live.get() + 1);
        let running = RunningCell(&self.running);
        let fiber = Fiber::new(stack, move |suspender| {
            let running = running;
            // SAFETY: the fiber set outlives its fibers (a worker exits only once it
            // has none), and only this thread touches it.
            unsafe { *(*running.0).borrow_mut() = Some(Running { id, suspender }) };
            body();
        });
        self.switch_to(lane, id, fiber, Vec::new());
    }

    /// Resumes the suspended fiber `id` until it suspends again or finishes. The spans
    /// it had open when it suspended are reopened on `lane` (and closed again if it
    /// suspends), so a trace shows what the thread really ran.
    pub(crate) fn resume(&self, lane: Lane<'_>, id: usize) {
        let (fiber, spans) = self.suspended.borrow_mut()[id]
            .take()
            .expect("a ready fiber is suspended");
        self.switch_to(lane, id, fiber, spans);
    }

    fn switch_to(&self, (tracer, index): Lane<'_>, id: usize, fiber: Fiber, spans: Vec<SpanKind>) {
        // What belongs to the code running here, saved across the switch.
        let ctx = context::current();
        let outer = self.running.borrow_mut().take();
        let depth = tracer.open_depth(index);
        tracer.reopen(index, spans);
        let resumed = fiber.resume();
        let spans = tracer.suspend_above(index, depth);
        *self.running.borrow_mut() = outer;
        context::set(ctx);
        match resumed {
            Resumed::Suspended(fiber) => self.suspended.borrow_mut()[id] = Some((fiber, spans)),
            Resumed::Finished(stack) => {
                self.live.set(self.live.get() - 1);
                self.free_ids.borrow_mut().push(id);
                let mut spare = self.spare_stacks.borrow_mut();
                if spare.len() < SPARE_STACKS {
                    spare.push(stack);
                }
            }
        }
    }

    /// Suspends the running fiber (the caller registered it where its wait ends).
    ///
    /// # Panics
    /// If no fiber is running (the worker's own stack cannot be suspended).
    pub(crate) fn suspend_current(&self) {
        let running = self
            .running
            .borrow()
            .clone()
            .expect("suspend_current runs on a fiber");
        let ctx: Context = context::current();
        // SAFETY: `running` is the fiber executing this code.
        unsafe { running.suspender.suspend() };
        *self.running.borrow_mut() = Some(running);
        context::set(ctx);
    }
}

/// The running-fiber cell, carried into a fiber's body.
struct RunningCell(*const RefCell<Option<Running>>);
// SAFETY: the fiber body runs on the thread that owns the cell (fibers never migrate;
// under loom the baton makes the fiber's thread run only while the owner waits).
unsafe impl Send for RunningCell {}
