//! Jobs: type-erased units of work that sit in the deques.
//!
//! A [`JobRef`] is two words of code and data plus the creator's [`Context`]. Two kinds
//! of job exist here: a [`StackJob`] lives on the stack of the thread that waits for it
//! (the waiter keeps it alive until its latch is set: `install` from outside a pool or
//! from another pool's worker), and a [`HeapJob`] is boxed and frees itself when it has
//! run (`spawn` and `Scope::spawn`). A `join`'s second half is a job of its own kind,
//! set up lazily (`half.rs`).

use std::any::Any;

use super::context::{self, Context};
use super::latch::Latch;
use super::unwind::catch;
use crate::sync::UnsafeCell;

/// A pointer to a job and the function that runs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JobRef {
    pointer: *const (),
    execute_fn: unsafe fn(*const ()),
    ctx: Context,
}

// SAFETY: a JobRef is a handle to a job whose data is `Send` (every constructor requires
// it); whoever executes it is the only one to touch that data.
unsafe impl Send for JobRef {}
// SAFETY: as above; a shared JobRef only exposes its fields by copy.
unsafe impl Sync for JobRef {}

impl PartialEq for JobRef {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.pointer, other.pointer)
    }
}

impl JobRef {
    /// A job that runs `execute_fn(pointer)` in context `ctx`.
    ///
    /// # Safety
    /// `execute_fn` must accept `pointer`, and the job's data must be `Send`.
    #[inline]
    pub(crate) unsafe fn new(
        pointer: *const (),
        execute_fn: unsafe fn(*const ()),
        ctx: Context,
    ) -> Self {
        JobRef {
            pointer,
            execute_fn,
            ctx,
        }
    }

    /// Runs the job with its creator's context current.
    ///
    /// # Safety
    /// The job must not have run yet, and its data must still be alive.
    #[inline]
    pub(crate) unsafe fn execute(self) {
        // SAFETY: the caller guarantees the job is live and runs it exactly once.
        context::enter(self.ctx, || unsafe { (self.execute_fn)(self.pointer) })
    }
}

/// The outcome of a job that runs elsewhere.
pub(crate) enum JobResult<T> {
    None,
    Ok(T),
    Panic(Box<dyn Any + Send>),
}

/// A job on the stack of the thread that waits for it.
pub(crate) struct StackJob<L, F, R> {
    pub(crate) latch: L,
    func: UnsafeCell<Option<F>>,
    result: UnsafeCell<JobResult<R>>,
    ctx: Context,
}

impl<L: Latch, F: FnOnce() -> R + Send, R: Send> StackJob<L, F, R> {
    pub(crate) fn new(func: F, latch: L, ctx: Context) -> Self {
        StackJob {
            latch,
            func: UnsafeCell::new(Some(func)),
            result: UnsafeCell::new(JobResult::None),
            ctx,
        }
    }

    /// A reference to push into a deque.
    ///
    /// # Safety
    /// `self` must stay where it is and alive until the job has run and set its latch,
    /// or has been taken back and run inline.
    pub(crate) unsafe fn as_job_ref(&self) -> JobRef {
        JobRef {
            pointer: self as *const Self as *const (),
            execute_fn: Self::execute,
            ctx: self.ctx,
        }
    }

    /// The result, once the latch is set.
    pub(crate) fn into_result(self) -> Result<R, Box<dyn Any + Send>> {
        self.result.with_mut(|r| {
            // SAFETY: the latch is set, so the executing thread has finished writing the
            // result and will not touch the job again.
            match std::mem::replace(unsafe { &mut *r }, JobResult::None) {
                JobResult::Ok(value) => Ok(value),
                JobResult::Panic(payload) => Err(payload),
                JobResult::None => unreachable!("a job's latch is set after its result"),
            }
        })
    }

    unsafe fn execute(this: *const ()) {
        // SAFETY: `as_job_ref` made this pointer from a live `Self` that stays alive
        // until the latch is set below.
        let this = unsafe { &*(this as *const Self) };
        // SAFETY: only the thread that took the job from the deque runs it.
        let func = this.func.with_mut(|f| unsafe { (*f).take() });
        let result = match catch(func.expect("a job runs once")) {
            Ok(value) => JobResult::Ok(value),
            Err(payload) => JobResult::Panic(payload),
        };
        // SAFETY: as above; the waiter reads the result only after the latch is set.
        this.result.with_mut(|r| unsafe { *r = result });
        // SAFETY: the latch lives in `this`, which the waiter keeps alive until set.
        unsafe { L::set(&this.latch) };
    }
}

/// A boxed job that frees itself after running.
pub(crate) struct HeapJob<F> {
    func: F,
}

impl<F: FnOnce() + Send> HeapJob<F> {
    /// Boxes `func` into a job with context `ctx`.
    ///
    /// # Safety
    /// Everything `func` borrows must outlive the job's execution (the `'static` bound
    /// of `spawn`, or the scope's wait for all its jobs).
    pub(crate) unsafe fn into_job_ref(func: F, ctx: Context) -> JobRef {
        let boxed = Box::new(HeapJob { func });
        JobRef {
            pointer: Box::into_raw(boxed) as *const (),
            execute_fn: Self::execute,
            ctx,
        }
    }

    unsafe fn execute(this: *const ()) {
        // SAFETY: made by `Box::into_raw` in `into_job_ref`, and a job runs once.
        let this = unsafe { Box::from_raw(this as *mut Self) };
        (this.func)();
    }
}
