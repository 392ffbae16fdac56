//! Fibers: stacks a worker can suspend and resume, one at a time, on its own thread.
//!
//! The real half uses `corosensei`'s stackful coroutines: resuming a fiber switches to
//! its stack until it suspends (back to whoever resumed it) or finishes; a finished
//! fiber gives its stack back for reuse (creating a stack is an `mmap`).
//!
//! Loom cannot switch stacks, so under `cfg(loom)` a fiber is a loom thread that runs
//! only while it holds its worker's *baton*: `resume` hands the baton to the fiber and
//! waits for it back, `suspend` hands it back and waits for the next `resume`. The
//! protocol code above this file is the same in both builds.

#[cfg(loom)]
pub use model::suspensions;
#[cfg(loom)]
pub(crate) use model::{Fiber, FiberStack, Resumed, Suspender};
#[cfg(not(loom))]
pub(crate) use real::{Fiber, FiberStack, Resumed, Suspender};

#[cfg(not(loom))]
mod real {
    use corosensei::stack::DefaultStack;
    use corosensei::{Coroutine, CoroutineResult, Yielder};

    /// A stack for fibers (address space reserved up front, committed as touched).
    pub(crate) struct FiberStack(DefaultStack);

    impl FiberStack {
        pub(crate) fn new(size: usize) -> std::io::Result<Self> {
            DefaultStack::new(size).map(FiberStack)
        }
    }

    /// A fiber that has not finished: fresh, or suspended.
    pub(crate) struct Fiber(Coroutine<(), (), (), DefaultStack>);

    /// What [`Fiber::resume`] came back with.
    pub(crate) enum Resumed {
        /// The fiber suspended itself; resume it again later (on this thread).
        Suspended(Fiber),
        /// The fiber's body returned; its stack can host another fiber.
        Finished(FiberStack),
    }

    /// The handle a fiber's body uses to suspend itself.
    #[derive(Clone, Copy)]
    pub(crate) struct Suspender(*const Yielder<(), ()>);

    impl Fiber {
        /// A fiber that will run `body` on `stack` when first resumed.
        pub(crate) fn new(
            stack: FiberStack,
            body: impl FnOnce(Suspender) + Send + 'static,
        ) -> Self {
            Fiber(Coroutine::with_stack(stack.0, move |yielder, ()| {
                body(Suspender(yielder))
            }))
        }

        /// Runs the fiber until it suspends or finishes. A panic escaping its body is
        /// re-raised here (weft's fiber bodies catch their own).
        pub(crate) fn resume(mut self) -> Resumed {
            match self.0.resume(()) {
                CoroutineResult::Yield(()) => Resumed::Suspended(self),
                CoroutineResult::Return(()) => Resumed::Finished(FiberStack(self.0.into_stack())),
            }
        }
    }

    impl Suspender {
        /// Suspends the running fiber; returns when it is resumed.
        ///
        /// # Safety
        /// Must be called on the fiber this suspender was given to, while it runs.
        pub(crate) unsafe fn suspend(&self) {
            // SAFETY: the yielder lives on the fiber's stack for as long as its body
            // runs, and the caller runs on that fiber.
            unsafe { (*self.0).suspend(()) }
        }
    }
}

#[cfg(loom)]
mod model {
    use crate::sync::{Arc, Condvar, Mutex};

    /// Loom builds: stacks are threads' own; nothing to keep.
    pub(crate) struct FiberStack;

    impl FiberStack {
        pub(crate) fn new(_size: usize) -> std::io::Result<Self> {
            Ok(FiberStack)
        }
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Turn {
        Resumer,
        Fiber,
        Finished,
    }

    struct Baton {
        turn: Mutex<Turn>,
        changed: Condvar,
    }

    impl Baton {
        fn pass(&self, to: Turn) {
            *self.turn.lock() = to;
            self.changed.notify_all();
        }

        fn wait_while(&self, turn: Turn) -> Turn {
            let mut now = self.turn.lock();
            while *now == turn {
                now = self.changed.wait(now);
            }
            *now
        }
    }

    /// Loom builds: a fiber is a loom thread that runs only while it holds the baton.
    pub(crate) struct Fiber {
        baton: Arc<Baton>,
        body: Option<Box<dyn FnOnce(Suspender) + Send>>,
    }

    pub(crate) enum Resumed {
        Suspended(Fiber),
        Finished(FiberStack),
    }

    #[derive(Clone)]
    pub(crate) struct Suspender(Arc<Baton>);

    impl Fiber {
        pub(crate) fn new(
            _stack: FiberStack,
            body: impl FnOnce(Suspender) + Send + 'static,
        ) -> Self {
            Fiber {
                baton: Arc::new(Baton {
                    turn: Mutex::new(Turn::Resumer),
                    changed: Condvar::new(),
                }),
                body: Some(Box::new(body)),
            }
        }

        pub(crate) fn resume(mut self) -> Resumed {
            if let Some(body) = self.body.take() {
                let baton = self.baton.clone();
                loom::thread::spawn(move || {
                    baton.wait_while(Turn::Resumer);
                    body(Suspender(baton.clone()));
                    baton.pass(Turn::Finished);
                });
            }
            self.baton.pass(Turn::Fiber);
            match self.baton.wait_while(Turn::Fiber) {
                Turn::Finished => Resumed::Finished(FiberStack),
                _ => Resumed::Suspended(self),
            }
        }
    }

    /// How many times a fiber suspended, over the whole process (models assert that
    /// they reached the suspension path).
    pub(crate) static SUSPENSIONS: std::sync::atomic::AtomicUsize =
        std::sync::atomic::AtomicUsize::new(0);

    /// Loom models only: see [`SUSPENSIONS`].
    pub fn suspensions() -> usize {
        SUSPENSIONS.load(std::sync::atomic::Ordering::Relaxed)
    }

    impl Suspender {
        pub(crate) unsafe fn suspend(&self) {
            SUSPENSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.pass(Turn::Resumer);
            self.0.wait_while(Turn::Resumer);
        }
    }
}
