//! The one door to concurrency primitives.
//!
//! Every atomic, lock, condition variable, thread, thread-local and work-stealing deque
//! the runtime uses comes from this module. In normal builds they map to `std`,
//! `parking_lot` and `crossbeam-deque`; under `--cfg loom` they map to `loom`'s models
//! so the `loom-tests` crate explores the real runtime code, not a copy. Nothing else in
//! the crate names `std::sync`, `parking_lot` or `crossbeam_deque` directly.
//!
//! `crossbeam-deque` cannot run under loom, so loom builds get [`deque`], a
//! `Mutex<VecDeque>` deque with the same interface (owner pops the newest job, thieves
//! steal the oldest) and a loom-only switch that forces the `Steal::Retry` path.

#![allow(dead_code)]

#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) mod atomic {
    pub(crate) use std::sync::atomic::{
        fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
    };
}
#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) mod atomic {
    pub(crate) use loom::sync::atomic::{
        fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
    };
}

use std::time::Duration;

/// Whether the deliberately broken variant `name` of a protocol is switched on.
///
/// Loom builds only: `WEFT_LOOM_MUTANT=name` turns one mutant on, so a model can show it
/// catches the bug (see `loom-tests`). Normal builds compile every mutant out.
#[cfg(loom)]
pub(crate) fn mutant(name: &str) -> bool {
    static SELECTED: OnceLock<Option<String>> = OnceLock::new();
    SELECTED
        .get_or_init(|| std::env::var("WEFT_LOOM_MUTANT").ok())
        .as_deref()
        == Some(name)
}

/// Normal builds: no mutant exists.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn mutant(_name: &str) -> bool {
    false
}

/// Whether the model asked the code to unwind at the fault point `point` (loom builds
/// only: `weft::__loom::inject_fault`), so a model can drive a guard's unwind path.
#[cfg(loom)]
pub(crate) fn fault(point: &str) -> bool {
    injected_fault().lock().unwrap().as_deref() == Some(point)
}

#[cfg(loom)]
fn injected_fault() -> &'static std::sync::Mutex<Option<String>> {
    static FAULT: OnceLock<std::sync::Mutex<Option<String>>> = OnceLock::new();
    FAULT.get_or_init(|| std::sync::Mutex::new(None))
}

/// Loom models only: arms (or, with `None`, disarms) the fault point `point`.
#[cfg(loom)]
pub fn inject_fault(point: Option<&str>) {
    *injected_fault().lock().unwrap() = point.map(str::to_string);
}

/// Normal builds: no fault is ever injected.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn fault(_point: &str) -> bool {
    false
}

/// A protocol variant that loom models switch on (off by default), so that models of
/// other protocols keep fewer interleavings; normal builds always have it on.
#[cfg(loom)]
pub struct ModelSwitch(std::sync::atomic::AtomicBool);

#[cfg(loom)]
impl ModelSwitch {
    const fn off() -> Self {
        ModelSwitch(std::sync::atomic::AtomicBool::new(false))
    }

    fn is_on(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Switches the variant on or off for the models that follow.
    pub fn set(&self, on: bool) {
        self.0.store(on, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether `join` publishes its oldest private half for idle workers (see
/// `pool::worker::HiddenJob`), and so lets sleeping workers stop counting as hungry.
/// Loom models without it model other protocols (sleepers then stay hungry and `join`
/// pushes for them, as before), since it multiplies the interleavings of every join.
#[cfg(loom)]
pub static PUBLISH_HIDDEN_HALVES: ModelSwitch = ModelSwitch::off();

/// Whether a `join` that finds its worker's slot free pushes its half onto the deque
/// (up to the worker's limit, see `pool::worker::WorkerThread::offer`) instead of
/// publishing it. Loom models without it keep modelling the slot's own protocol with
/// one `join` (with it, a single `join` on a two-thread pool pushes its half).
#[cfg(loom)]
pub static PUSH_EAGER_HALVES: ModelSwitch = ModelSwitch::off();

/// Whether an idle worker about to sleep snatches the oldest private `join` half of
/// another worker (see `pool::snatch`). Loom models without it model the other
/// protocols with fewer interleavings (every idle worker would walk every list).
#[cfg(loom)]
pub static SNATCH_PRIVATE_HALVES: ModelSwitch = ModelSwitch::off();

/// See `SNATCH_PRIVATE_HALVES` (loom builds); always on in normal builds.
#[inline(always)]
pub(crate) fn snatching() -> bool {
    #[cfg(loom)]
    return SNATCH_PRIVATE_HALVES.is_on();
    #[cfg(not(loom))]
    true
}

/// See `PUBLISH_HIDDEN_HALVES` (loom builds); always on in normal builds.
#[inline(always)]
pub(crate) fn publishing() -> bool {
    #[cfg(loom)]
    return PUBLISH_HIDDEN_HALVES.is_on();
    #[cfg(not(loom))]
    true
}

/// See `PUSH_EAGER_HALVES` (loom builds); always on in normal builds.
#[inline(always)]
pub(crate) fn eager_halves() -> bool {
    #[cfg(loom)]
    return PUSH_EAGER_HALVES.is_on();
    #[cfg(not(loom))]
    true
}

/// Asymmetric fences: a cheap one for a thread on a hot path, and an expensive one for
/// the rare thread that must synchronise with it (`pool/snatch.rs`). Together they act
/// as two `SeqCst` fences: of a store-then-load on each side, at least one load sees the
/// other side's store.
pub(crate) mod asymmetric {
    /// The hot side: a compiler fence (loom: a `SeqCst` fence, which is what it
    /// stands for).
    #[inline(always)]
    pub(crate) fn light_fence() {
        #[cfg(not(loom))]
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        #[cfg(loom)]
        loom::sync::atomic::fence(loom::sync::atomic::Ordering::SeqCst);
    }

    /// True if [`heavy_fence`] can work here (checked once per process).
    pub(crate) fn available() -> bool {
        #[cfg(loom)]
        return true;
        #[cfg(not(loom))]
        return membarrier::registered();
    }

    /// The rare side: makes every thread of the process pass a full fence (Linux's
    /// `membarrier`, private expedited). False if it could not; the caller must then not
    /// rely on it.
    pub(crate) fn heavy_fence() -> bool {
        #[cfg(loom)]
        {
            loom::sync::atomic::fence(loom::sync::atomic::Ordering::SeqCst);
            true
        }
        #[cfg(not(loom))]
        membarrier::barrier()
    }

    #[cfg(all(not(loom), target_os = "linux"))]
    mod membarrier {
        use std::sync::atomic::{AtomicU8, Ordering};

        // From <linux/membarrier.h>.
        const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
        const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

        const UNKNOWN: u8 = 0;
        const READY: u8 = 1;
        const UNAVAILABLE: u8 = 2;
        static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

        /// Registers the process for private expedited barriers, once; false if the
        /// kernel (or a seccomp filter, or valgrind) refuses.
        pub(super) fn registered() -> bool {
            match STATE.load(Ordering::Acquire) {
                READY => true,
                UNAVAILABLE => false,
                _ => {
                    // SAFETY: `membarrier` takes two integer arguments and touches no
                    // memory of ours.
                    let result = unsafe {
                        libc::syscall(libc::SYS_membarrier, CMD_REGISTER_PRIVATE_EXPEDITED, 0)
                    };
                    let state = if result == 0 { READY } else { UNAVAILABLE };
                    STATE.store(state, Ordering::Release);
                    state == READY
                }
            }
        }

        pub(super) fn barrier() -> bool {
            // SAFETY: as above.
            registered()
                && unsafe { libc::syscall(libc::SYS_membarrier, CMD_PRIVATE_EXPEDITED, 0) } == 0
        }
    }

    /// No asymmetric fence known on this OS: never available.
    #[cfg(all(not(loom), not(target_os = "linux")))]
    mod membarrier {
        pub(super) fn registered() -> bool {
            false
        }

        pub(super) fn barrier() -> bool {
            false
        }
    }
}

/// One-time initialisation of process globals (the global pool). Not a protocol the
/// models explore: loom builds never touch the global pool.
pub(crate) use std::sync::OnceLock;

/// A mutual-exclusion lock with `parking_lot`'s poison-free interface.
pub(crate) struct Mutex<T> {
    #[cfg(not(loom))]
    inner: parking_lot::Mutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex {
            #[cfg(not(loom))]
            inner: parking_lot::Mutex::new(value),
            #[cfg(loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    /// Runs `f` on the data without taking the lock (a loom build takes it).
    ///
    /// # Safety
    /// No other thread may use this mutex until `f` returns.
    #[inline]
    pub(crate) unsafe fn with_exclusive<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        #[cfg(not(loom))]
        // SAFETY: the caller guarantees exclusive use of the mutex meanwhile.
        return f(unsafe { &mut *self.inner.data_ptr() });
        #[cfg(loom)]
        return f(&mut self.lock());
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(loom))]
        return self.inner.lock();
        // A panic while holding one of our locks is a runtime bug; the poison flag adds
        // nothing, so take the guard either way.
        #[cfg(loom)]
        return self.inner.lock().unwrap_or_else(|e| e.into_inner());
    }
}

/// A condition variable paired with [`Mutex`].
pub(crate) struct Condvar {
    #[cfg(not(loom))]
    inner: parking_lot::Condvar,
    #[cfg(loom)]
    inner: loom::sync::Condvar,
}

impl Condvar {
    pub(crate) fn new() -> Self {
        Condvar {
            #[cfg(not(loom))]
            inner: parking_lot::Condvar::new(),
            #[cfg(loom)]
            inner: loom::sync::Condvar::new(),
        }
    }

    /// Blocks until notified; the guard is released while waiting.
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        #[cfg(not(loom))]
        {
            let mut guard = guard;
            self.inner.wait(&mut guard);
            guard
        }
        #[cfg(loom)]
        self.inner.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// Like [`Condvar::wait`] with a time limit; returns `true` when it timed out.
    /// (Under loom it never times out.)
    pub(crate) fn wait_for<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        #[cfg(not(loom))]
        {
            let mut guard = guard;
            let timed_out = self.inner.wait_for(&mut guard, timeout).timed_out();
            (guard, timed_out)
        }
        #[cfg(loom)]
        {
            let _ = timeout;
            (self.wait(guard), false)
        }
    }

    pub(crate) fn notify_one(&self) {
        self.inner.notify_one();
    }

    pub(crate) fn notify_all(&self) {
        self.inner.notify_all();
    }
}

/// Interior mutability whose accesses loom can check for data races.
pub(crate) struct UnsafeCell<T> {
    #[cfg(not(loom))]
    inner: std::cell::UnsafeCell<T>,
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
}

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        UnsafeCell {
            #[cfg(not(loom))]
            inner: std::cell::UnsafeCell::new(value),
            #[cfg(loom)]
            inner: loom::cell::UnsafeCell::new(value),
        }
    }

    /// Gives `f` a shared pointer to the contents. The caller proves no writer runs.
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(not(loom))]
        return f(self.inner.get());
        #[cfg(loom)]
        return self.inner.with(f);
    }

    /// Gives `f` a mutable pointer to the contents. The caller proves exclusivity.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(loom))]
        return f(self.inner.get());
        #[cfg(loom)]
        return self.inner.with_mut(f);
    }

    /// The contents (ownership proves no other access).
    pub(crate) fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

/// A boxed slice of `len` values that all equal `make()`, where `make()` is all-zero
/// bytes: normal builds get the memory from the allocator already zeroed (large tables
/// then cost no memory until touched), loom builds construct each value (loom's
/// atomics and cells are not plain memory).
///
/// # Safety
/// An all-zero `T` must be a valid value equal to `make()`; `T` must not be zero-sized
/// and `len` must be non-zero.
pub(crate) unsafe fn zeroed_slice<T>(len: usize, make: impl Fn() -> T) -> Box<[T]> {
    #[cfg(not(loom))]
    {
        let _ = make;
        assert!(len > 0 && std::mem::size_of::<T>() > 0);
        let too_large = || -> ! {
            // A panic, not an abort: the request that needed the memory fails (its
            // query is poisoned with this message) and the process lives on.
            panic!(
                "weft: could not allocate {len} x {} bytes for a memo table (with \
                 `Query::KEY_INDEX`, a slot for every index up to the largest requested)",
                std::mem::size_of::<T>()
            )
        };
        let Ok(layout) = std::alloc::Layout::array::<T>(len) else {
            too_large()
        };
        // SAFETY: the layout has a non-zero size (checked above).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) } as *mut T;
        if ptr.is_null() {
            too_large()
        }
        // SAFETY: `len` zeroed `T`s, which the caller guarantees are valid values, in an
        // allocation made with the layout `Box<[T]>` frees with.
        unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) }
    }
    #[cfg(loom)]
    {
        (0..len).map(|_| make()).collect()
    }
}

/// Threads: spawning with a name and stack size, yielding, spinning.
pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::{yield_now, JoinHandle};
    #[cfg(not(loom))]
    pub(crate) use std::thread::{yield_now, JoinHandle};

    /// Starts a thread with the given name and (outside loom) stack size.
    pub(crate) fn spawn<F>(
        name: String,
        stack_size: Option<usize>,
        body: F,
    ) -> std::io::Result<JoinHandle<()>>
    where
        F: FnOnce() + Send + 'static,
    {
        #[cfg(not(loom))]
        let mut builder = std::thread::Builder::new().name(name);
        #[cfg(loom)]
        let mut builder = loom::thread::Builder::new().name(name);
        if let Some(size) = stack_size {
            builder = builder.stack_size(size);
        }
        builder.spawn(body)
    }

    /// Runs `body` on a new thread with a stack of `stack_size` bytes and waits for it;
    /// a panic in `body` is re-raised here. Loom builds run it on the calling thread.
    pub(crate) fn run_on_new_stack<R: Send>(
        name: &str,
        stack_size: usize,
        body: impl FnOnce() -> R + Send,
    ) -> std::io::Result<R> {
        #[cfg(not(loom))]
        {
            std::thread::scope(|scope| {
                let handle = std::thread::Builder::new()
                    .name(name.to_string())
                    .stack_size(stack_size)
                    .spawn_scoped(scope, body)?;
                match handle.join() {
                    Ok(value) => Ok(value),
                    Err(payload) => std::panic::resume_unwind(payload),
                }
            })
        }
        #[cfg(loom)]
        {
            let _ = (name, stack_size);
            Ok(body())
        }
    }

    /// Runs `body` on the calling thread, on a fresh stack of `stack_size` bytes
    /// (reserved address space, touched as it is used); a panic in `body` is re-raised
    /// here. Loom builds run it on the current stack.
    pub(crate) fn run_on_fresh_stack<R>(
        stack_size: usize,
        body: impl FnOnce() -> R,
    ) -> std::io::Result<R> {
        #[cfg(not(loom))]
        {
            let stack = corosensei::stack::DefaultStack::new(stack_size)?;
            Ok(corosensei::on_stack(stack, body))
        }
        #[cfg(loom)]
        {
            let _ = stack_size;
            Ok(body())
        }
    }

    /// A hint to the processor that we are in a spin loop (a loom yield point).
    pub(crate) fn spin_loop() {
        #[cfg(not(loom))]
        std::hint::spin_loop();
        #[cfg(loom)]
        loom::thread::yield_now();
    }
}

/// Declares a thread-local: `std`'s const-initialised one normally, loom's under loom
/// (std's would leak values between loom's simulated threads).
macro_rules! weft_thread_local {
    ($(#[$attr:meta])* static $name:ident: $ty:ty = $init:expr;) => {
        #[cfg(not(loom))]
        std::thread_local! { $(#[$attr])* static $name: $ty = const { $init }; }
        #[cfg(loom)]
        loom::thread_local! { $(#[$attr])* static $name: $ty = $init; }
    };
}
pub(crate) use weft_thread_local;

pub(crate) mod fiber;

/// Work-stealing deques: `crossbeam-deque` normally.
#[cfg(not(loom))]
pub(crate) mod deque {
    pub(crate) use crossbeam_deque::{Injector, Steal, Stealer, Worker};
}

/// Work-stealing deques for loom builds: a locked `VecDeque` with crossbeam's interface.
#[cfg(loom)]
pub(crate) mod deque {
    use super::{Arc, Mutex};
    use std::collections::VecDeque;

    /// The outcome of a steal, as in `crossbeam-deque`.
    pub(crate) enum Steal<T> {
        Empty,
        Success(T),
        Retry,
    }

    loom::lazy_static! {
        /// How many steals may still answer `Retry` first (see [`force_retry`]).
        static ref RETRIES_LEFT: loom::sync::atomic::AtomicUsize =
            loom::sync::atomic::AtomicUsize::new(0);
    }

    /// Makes the next two steal attempts answer `Retry` (loom models only), so models
    /// cover the retry path that crossbeam's lock-free deque can take. A budget, not a
    /// pattern: a pattern could starve one thief forever under some schedule.
    pub fn force_retry(on: bool) {
        RETRIES_LEFT.store(
            if on { 2 } else { 0 },
            loom::sync::atomic::Ordering::Relaxed,
        );
    }

    fn should_retry() -> bool {
        use loom::sync::atomic::Ordering::Relaxed;
        RETRIES_LEFT
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    pub(crate) struct Worker<T> {
        queue: Arc<Mutex<VecDeque<T>>>,
        /// The owner pops the oldest job (crossbeam's `new_fifo`).
        fifo: bool,
    }

    pub(crate) struct Stealer<T> {
        queue: Arc<Mutex<VecDeque<T>>>,
    }

    impl<T> Worker<T> {
        pub(crate) fn new_lifo() -> Self {
            Worker {
                queue: Arc::new(Mutex::new(VecDeque::new())),
                fifo: false,
            }
        }
        pub(crate) fn new_fifo() -> Self {
            Worker {
                fifo: true,
                ..Worker::new_lifo()
            }
        }
        pub(crate) fn push(&self, value: T) {
            self.queue.lock().push_back(value);
        }
        pub(crate) fn pop(&self) -> Option<T> {
            let mut queue = self.queue.lock();
            if self.fifo {
                queue.pop_front()
            } else {
                queue.pop_back()
            }
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.queue.lock().is_empty()
        }
        pub(crate) fn stealer(&self) -> Stealer<T> {
            Stealer {
                queue: self.queue.clone(),
            }
        }
    }

    impl<T> Stealer<T> {
        pub(crate) fn steal(&self) -> Steal<T> {
            if should_retry() {
                return Steal::Retry;
            }
            match self.queue.lock().pop_front() {
                Some(value) => Steal::Success(value),
                None => Steal::Empty,
            }
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.queue.lock().is_empty()
        }
    }

    pub(crate) struct Injector<T> {
        queue: Mutex<VecDeque<T>>,
    }

    impl<T> Injector<T> {
        pub(crate) fn new() -> Self {
            Injector {
                queue: Mutex::new(VecDeque::new()),
            }
        }
        pub(crate) fn push(&self, value: T) {
            self.queue.lock().push_back(value);
        }
        pub(crate) fn steal(&self) -> Steal<T> {
            if should_retry() {
                return Steal::Retry;
            }
            match self.queue.lock().pop_front() {
                Some(value) => Steal::Success(value),
                None => Steal::Empty,
            }
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.queue.lock().is_empty()
        }
    }
}
