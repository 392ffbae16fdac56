//! `ThreadPoolBuilder` and `ThreadPool`: configuring, building and using a pool.

use std::any::Any;
use std::fmt;
use std::io;

use super::broadcast::{broadcast_on, spawn_broadcast_on, BroadcastContext};
use super::registry::{
    set_global_registry, PanicHandler, PoolConfig, PoolStats, Registry, Spawner, ThreadBuilder,
    ThreadHook, ThreadNamer,
};
use super::scope::{in_place_scope_on, in_scope_on, Scope, ScopeFifo};
use super::spawn::{spawn_fifo_on, spawn_on};
use super::tokens::TokenPool;
use super::unwind::{catch, drop_payload, panic_text};
use super::worker::WorkerThread;
use super::yielding::{run_one, worker_of, Yield};
use crate::sync::Arc;
#[cfg(not(loom))]
use crate::sync::OnceLock;

/// Stack size of worker threads unless the builder sets one.
///
/// Large on purpose: it is reserved address space, committed only as it is touched, and
/// it lets `join` nest 100,000 deep (and queries recurse deeply) without overflowing.
pub const DEFAULT_STACK_SIZE: usize = 1 << 30;

/// How many spare threads a pool may start by default, one for each worker blocked
/// inside [`crate::blocking`] at the same time. Spares are started only when needed
/// and park when the blocked workers return.
pub const DEFAULT_MAX_SPARES: usize = 1024;

/// The most threads a pool runs jobs on: a larger `num_threads` (or environment
/// variable) is reduced to it. The same as rayon's limit.
pub const MAX_NUM_THREADS: usize = 0xFFFF;

/// The most threads a pool runs jobs on ([`MAX_NUM_THREADS`]); rayon's function.
pub fn max_num_threads() -> usize {
    MAX_NUM_THREADS
}

/// Configures and builds a [`ThreadPool`]; the names follow rayon's.
///
/// ```
/// let pool = weft::ThreadPoolBuilder::new()
///     .num_threads(2)
///     .thread_name(|i| format!("compiler-{i}"))
///     .build()
///     .unwrap();
/// assert_eq!(pool.current_num_threads(), 2);
/// assert_eq!(pool.install(|| weft::current_num_threads()), 2);
/// ```
pub struct ThreadPoolBuilder<S = DefaultSpawn> {
    settings: Settings,
    /// How worker threads are started: weft's way, or the user's
    /// ([`ThreadPoolBuilder::spawn_handler`]).
    spawn_handler: S,
}

/// What a builder has been told, apart from how to start threads.
#[derive(Default)]
struct Settings {
    num_threads: usize,
    max_threads: Option<usize>,
    stack_size: Option<usize>,
    thread_name: Option<Box<ThreadNamer>>,
    panic_handler: Option<Box<PanicHandler>>,
    start_handler: Option<Box<ThreadHook>>,
    exit_handler: Option<Box<ThreadHook>>,
    breadth_first: bool,
    use_current_thread: bool,
    jobserver: JobserverChoice,
    trace: bool,
}

#[derive(Default)]
enum JobserverChoice {
    /// The jobserver this process inherited from Cargo or make, if any.
    #[default]
    Inherited,
    Client(jobserver::Client),
    None,
    /// Loom models: a modelled jobserver.
    #[cfg(loom)]
    Model(TokenPool),
}

/// The jobserver named in this process's environment (`CARGO_MAKEFLAGS`, `MAKEFLAGS`,
/// `MFLAGS`), looked up once.
#[cfg(loom)]
fn inherited_jobserver() -> Option<jobserver::Client> {
    None
}

#[cfg(not(loom))]
fn inherited_jobserver() -> Option<jobserver::Client> {
    static INHERITED: OnceLock<Option<jobserver::Client>> = OnceLock::new();
    INHERITED
        .get_or_init(|| {
            // SAFETY: `from_env_ext` takes the file descriptors the environment names;
            // with `check_pipe` it verifies they are a pipe or fifo before using them,
            // and we do this once per process, so no descriptor is claimed twice.
            unsafe { jobserver::Client::from_env_ext(true) }
                .client
                .ok()
                // `make -j1` starts no jobserver: it only says `-j1`. Honour it with a
                // private jobserver that has no token besides the implicit one.
                .or_else(|| {
                    serial_make()
                        .then(|| jobserver::Client::new(0).ok())
                        .flatten()
                })
        })
        .clone()
}

/// True when the environment's make flags ask for one job at a time (`-j1`).
#[cfg(not(loom))]
fn serial_make() -> bool {
    ["CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"]
        .iter()
        .any(|var| {
            std::env::var(var).is_ok_and(|flags| {
                let words: Vec<&str> = flags.split_whitespace().collect();
                words
                    .iter()
                    .enumerate()
                    .any(|(i, w)| *w == "-j1" || (*w == "-j" && words.get(i + 1) == Some(&"1")))
            })
        })
}

/// Only for the default spawn, as in rayon: `ThreadPoolBuilder::default()` then needs
/// no type annotation.
impl Default for ThreadPoolBuilder {
    fn default() -> Self {
        ThreadPoolBuilder {
            settings: Settings::default(),
            spawn_handler: DefaultSpawn,
        }
    }
}

impl ThreadPoolBuilder {
    /// A builder with the defaults: one thread per CPU (or `WEFT_NUM_THREADS`), a spare
    /// thread standing in for each worker inside `weft::blocking` (up to
    /// [`DEFAULT_MAX_SPARES`]), 1 GiB of reserved stack each (threads and fibers), and
    /// the inherited jobserver if any.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a pool whose worker threads are scoped threads of this call: `wrapper` is
    /// called on each with its [`ThreadBuilder`] and must call [`ThreadBuilder::run`]
    /// (it may set up thread-local state around it); `with_pool` then runs with the
    /// pool, and the call returns once the pool has shut down and every worker thread
    /// has exited. Like [`spawn_handler`](Self::spawn_handler), no spares.
    #[cfg(not(loom))]
    pub fn build_scoped<W, F, R>(self, wrapper: W, with_pool: F) -> Result<R, ThreadPoolBuildError>
    where
        W: Fn(ThreadBuilder) + Sync,
        F: FnOnce(&ThreadPool) -> R,
    {
        std::thread::scope(|scope| {
            let wrapper = &wrapper;
            let pool = self
                .spawn_handler(|thread| {
                    let mut builder = std::thread::Builder::new();
                    if let Some(name) = thread.name() {
                        builder = builder.name(name.to_owned());
                    }
                    if let Some(bytes) = thread.stack_size() {
                        builder = builder.stack_size(bytes);
                    }
                    builder.spawn_scoped(scope, move || wrapper(thread))?;
                    Ok(())
                })
                .build()?;
            Ok(with_pool(&pool))
        })
    }
}

impl<S> ThreadPoolBuilder<S> {
    /// The number of threads that run jobs. 0 (the default) means the environment
    /// variable `WEFT_NUM_THREADS` (or else rayon's `RAYON_NUM_THREADS`) if set to a
    /// positive number, else the number of CPUs. At most [`crate::max_num_threads`].
    pub fn num_threads(mut self, num_threads: usize) -> Self {
        self.settings.num_threads = num_threads;
        self
    }

    /// The most threads the pool may have at once, counting the spares that stand in
    /// for workers inside [`crate::blocking`] (the only wait that holds a thread:
    /// waits on queries, joins, scopes and other pools suspend fibers instead).
    /// Defaults to `num_threads + DEFAULT_MAX_SPARES`; must not be below `num_threads`.
    /// A lower limit can stall a program whose blocking calls wait for each other's
    /// jobs: past it, a blocked worker gets no stand-in.
    pub fn max_threads(mut self, max_threads: usize) -> Self {
        self.settings.max_threads = Some(max_threads);
        self
    }

    /// Stack size of each worker thread, in bytes.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.settings.stack_size = Some(bytes);
        self
    }

    /// Names worker threads: called with each worker's index, for every thread the
    /// pool may start (spares included), once, by `build`. A namer that panics makes
    /// `build` fail; no thread is started then.
    pub fn thread_name<F>(mut self, name: F) -> Self
    where
        F: FnMut(usize) -> String + 'static,
    {
        self.settings.thread_name = Some(Box::new(name));
        self
    }

    /// Called on each worker thread when it starts, with its index (a spare gets the
    /// index of the worker it stands in for, see [`crate::current_thread_index`]). A
    /// panic in it goes to the [panic handler](Self::panic_handler).
    pub fn start_handler<H>(mut self, handler: H) -> Self
    where
        H: Fn(usize) + Send + Sync + 'static,
    {
        self.settings.start_handler = Some(Box::new(handler));
        self
    }

    /// Called on each worker thread just before it exits, with its index (as for
    /// [`start_handler`](Self::start_handler)). A panic in it goes to the panic handler.
    pub fn exit_handler<H>(mut self, handler: H) -> Self
    where
        H: Fn(usize) + Send + Sync + 'static,
    {
        self.settings.exit_handler = Some(Box::new(handler));
        self
    }

    /// Makes each worker take the jobs of its own deque oldest first instead of newest
    /// first (rayon's deprecated option; thieves still take the oldest). Usually
    /// slower: a `join` then rarely finds its own second half on top of its deque.
    #[deprecated(note = "depth-first (the default) is faster for nested parallelism")]
    pub fn breadth_first(mut self) -> Self {
        self.settings.breadth_first = true;
        self
    }

    /// Makes the thread that calls `build` worker 0 of the pool (rayon's option). It
    /// runs no work-stealing loop: it runs the pool's jobs only from inside pool calls
    /// (while a `join`, `scope` or `broadcast` waits, in `yield_now`), and the other
    /// workers steal what it queues. It stays a worker of the pool for the rest of its
    /// life, even after the pool is dropped, holding one of the pool's running permits
    /// (a jobserver token, if one limits the pool). Start and exit handlers do not run
    /// for it. `build` fails if the thread is already a worker.
    ///
    /// ```
    /// std::thread::spawn(|| {
    ///     let pool = weft::ThreadPoolBuilder::new()
    ///         .num_threads(2)
    ///         .use_current_thread()
    ///         .build()
    ///         .unwrap();
    ///     assert_eq!(weft::current_thread_index(), Some(0));
    ///     assert_eq!(pool.install(|| weft::join(|| 1, || 2)), (1, 2));
    /// })
    /// .join()
    /// .unwrap();
    /// ```
    pub fn use_current_thread(mut self) -> Self {
        self.settings.use_current_thread = true;
        self
    }

    /// Called with the payload of a panic in a `spawn`ed job. Panics in `join` and
    /// `scope` are re-raised in the caller instead.
    pub fn panic_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(Box<dyn Any + Send>) + Send + Sync + 'static,
    {
        self.settings.panic_handler = Some(Box::new(handler));
        self
    }

    /// Takes CPU budget from this jobserver: besides the process's implicit token,
    /// every running worker holds one of its tokens. By default a pool uses the
    /// jobserver inherited from Cargo or make, if the process has one (and under
    /// `make -j1`, which starts none, runs one worker at a time).
    pub fn jobserver(mut self, client: jobserver::Client) -> Self {
        self.settings.jobserver = JobserverChoice::Client(client);
        self
    }

    /// Ignores any inherited jobserver: up to `num_threads` workers run.
    pub fn no_jobserver(mut self) -> Self {
        self.settings.jobserver = JobserverChoice::None;
        self
    }

    /// Records what every worker does, for [`ThreadPool::take_trace`] (see
    /// [`crate::trace`]). Off by default; off, each event site costs one relaxed load.
    pub fn trace(mut self, on: bool) -> Self {
        self.settings.trace = on;
        self
    }

    /// Starts the pool's worker threads with `spawn` instead of weft's own: it gets a
    /// [`ThreadBuilder`] per worker and must start a thread that calls
    /// [`ThreadBuilder::run`] (or return an error, which fails `build`). Called by
    /// `build`, on the calling thread. Such a pool starts no spare threads (its
    /// `max_threads` is its `num_threads`): a worker inside [`crate::blocking`] then
    /// costs the pool its share.
    ///
    /// ```
    /// let pool = weft::ThreadPoolBuilder::new()
    ///     .num_threads(2)
    ///     .spawn_handler(|thread| {
    ///         std::thread::Builder::new()
    ///             .name(format!("mine-{}", thread.index()))
    ///             .spawn(|| thread.run())?;
    ///         Ok(())
    ///     })
    ///     .build()
    ///     .unwrap();
    /// let name = pool.install(|| std::thread::current().name().map(str::to_owned));
    /// assert!(name.unwrap().starts_with("mine-"));
    /// ```
    pub fn spawn_handler<F>(self, spawn: F) -> ThreadPoolBuilder<CustomSpawn<F>>
    where
        F: FnMut(ThreadBuilder) -> io::Result<()>,
    {
        ThreadPoolBuilder {
            settings: self.settings,
            spawn_handler: CustomSpawn(spawn),
        }
    }

    /// Loom models only: limits the pool by a modelled jobserver of `limit` tokens.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn model_jobserver(mut self, limit: usize) -> (Self, Arc<super::tokens::ModelJobserver>) {
        let (tokens, model) = TokenPool::with_model_limit(limit);
        self.settings.jobserver = JobserverChoice::Model(tokens);
        (self, model)
    }

    pub(crate) fn into_config(self) -> Result<PoolConfig, ThreadPoolBuildError> {
        self.settings.into_config()
    }
}

impl Settings {
    fn resolved_num_threads(&self) -> usize {
        if self.num_threads > 0 {
            return self.num_threads.min(MAX_NUM_THREADS);
        }
        let from_env = |var: &str| {
            std::env::var(var)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&n| n > 0)
        };
        from_env("WEFT_NUM_THREADS")
            .or_else(|| from_env("RAYON_NUM_THREADS"))
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .min(MAX_NUM_THREADS)
    }

    fn validate(&self) -> Result<(), ThreadPoolBuildError> {
        let num_threads = self.resolved_num_threads();
        match self.max_threads {
            Some(max) if max < num_threads => {
                Err(ThreadPoolBuildError::new(ErrorKind::MaxBelowNum {
                    num_threads,
                    max_threads: max,
                }))
            }
            _ => Ok(()),
        }
    }

    fn into_config(mut self) -> Result<PoolConfig, ThreadPoolBuildError> {
        let num_threads = self.resolved_num_threads();
        let client = match std::mem::take(&mut self.jobserver) {
            JobserverChoice::Inherited => inherited_jobserver(),
            JobserverChoice::Client(client) => Some(client),
            JobserverChoice::None => None,
            #[cfg(loom)]
            JobserverChoice::Model(tokens) => return self.config_with(num_threads, tokens),
        };
        let tokens = match client {
            #[cfg(not(loom))]
            Some(client) => TokenPool::with_jobserver(client)
                .map_err(|e| ThreadPoolBuildError::new(ErrorKind::Io(e)))?,
            #[cfg(loom)]
            Some(_) => TokenPool::unlimited(),
            None => TokenPool::unlimited(),
        };
        self.config_with(num_threads, tokens)
    }

    fn config_with(
        self,
        num_threads: usize,
        tokens: TokenPool,
    ) -> Result<PoolConfig, ThreadPoolBuildError> {
        let stack_size = if cfg!(loom) {
            None
        } else {
            Some(self.stack_size.unwrap_or(DEFAULT_STACK_SIZE))
        };
        let max_threads = self.max_threads.unwrap_or(num_threads + DEFAULT_MAX_SPARES);
        Ok(PoolConfig {
            num_threads,
            max_threads,
            stack_size,
            thread_names: thread_names(self.thread_name, max_threads)?,
            panic_handler: self.panic_handler,
            start_handler: self.start_handler,
            exit_handler: self.exit_handler,
            breadth_first: self.breadth_first,
            adopt_current_thread: self.use_current_thread,
            tokens,
            trace: self.trace,
        })
    }
}

impl<S: ThreadSpawn> ThreadPoolBuilder<S> {
    /// Builds the pool and starts its threads.
    pub fn build(self) -> Result<ThreadPool, ThreadPoolBuildError> {
        Ok(ThreadPool {
            registry: self.build_registry()?,
        })
    }

    /// Builds the pool and makes it the global pool used outside any `install`.
    /// Fails if the global pool already exists (it is built on first use).
    pub fn build_global(self) -> Result<(), ThreadPoolBuildError> {
        set_global_registry(self.build_registry()?).map_err(|unused| {
            unused.terminate();
            ThreadPoolBuildError::new(ErrorKind::GlobalPoolAlreadyInitialized)
        })
    }

    fn build_registry(mut self) -> Result<Arc<Registry>, ThreadPoolBuildError> {
        self.settings.validate()?;
        if self.settings.use_current_thread && !WorkerThread::current().is_null() {
            return Err(ThreadPoolBuildError::new(
                ErrorKind::CurrentThreadAlreadyInPool,
            ));
        }
        if self.spawn_handler.spawner().is_some() {
            // The handler is called on this thread, now: it cannot start spares later.
            self.settings.max_threads = Some(self.settings.resolved_num_threads());
        }
        let config = self.settings.into_config()?;
        Registry::new(config, self.spawn_handler.spawner())
            .map_err(|e| ThreadPoolBuildError::new(ErrorKind::Io(e)))
    }
}

/// The names of a pool's threads.
pub(crate) enum ThreadNames {
    /// `weft-worker-{index}`, made when the thread starts (a pool may have a thousand
    /// spare slots that never get a thread).
    Default,
    /// What the user's namer returned for each slot, at build time.
    Named(Vec<String>),
}

impl ThreadNames {
    /// The name of slot `index`'s thread.
    pub(crate) fn of(&self, index: usize) -> String {
        match self {
            ThreadNames::Default => format!("weft-worker-{index}"),
            ThreadNames::Named(names) => names[index].clone(),
        }
    }
}

/// Every slot's thread name, from the user's namer (caught if it panics) or the default.
fn thread_names(
    namer: Option<Box<ThreadNamer>>,
    max_threads: usize,
) -> Result<ThreadNames, ThreadPoolBuildError> {
    let Some(mut namer) = namer else {
        return Ok(ThreadNames::Default);
    };
    let mut names = Vec::with_capacity(max_threads);
    for index in 0..max_threads {
        match catch(|| namer(index)) {
            Ok(name) => names.push(name),
            Err(payload) => {
                let message = panic_text(&*payload);
                drop_payload(payload);
                return Err(ThreadPoolBuildError::new(ErrorKind::ThreadNamePanicked {
                    index,
                    message,
                }));
            }
        }
    }
    // The namer's captures drop here, outside any worker; a panic there is the caller's.
    drop(namer);
    Ok(ThreadNames::Named(names))
}

impl<S> fmt::Debug for ThreadPoolBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("num_threads", &self.settings.num_threads)
            .field("max_threads", &self.settings.max_threads)
            .field("stack_size", &self.settings.stack_size)
            .finish_non_exhaustive()
    }
}

/// Why a pool could not be built.
#[derive(Debug)]
pub struct ThreadPoolBuildError {
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    GlobalPoolAlreadyInitialized,
    CurrentThreadAlreadyInPool,
    MaxBelowNum {
        num_threads: usize,
        max_threads: usize,
    },
    ThreadNamePanicked {
        index: usize,
        message: String,
    },
    Io(io::Error),
}

impl ThreadPoolBuildError {
    fn new(kind: ErrorKind) -> Self {
        ThreadPoolBuildError { kind }
    }
}

impl fmt::Display for ThreadPoolBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            // rayon's text, word for word: programs and tests match on it.
            ErrorKind::GlobalPoolAlreadyInitialized => {
                f.write_str("The global thread pool has already been initialized.")
            }
            ErrorKind::CurrentThreadAlreadyInPool => {
                f.write_str("The current thread is already part of another thread pool.")
            }
            ErrorKind::MaxBelowNum {
                num_threads,
                max_threads,
            } => write!(
                f,
                "max_threads ({max_threads}) is below num_threads ({num_threads})"
            ),
            ErrorKind::ThreadNamePanicked { index, message } => write!(
                f,
                "the thread_name closure panicked naming thread {index}: {message}"
            ),
            ErrorKind::Io(err) => write!(f, "failed to start a worker thread: {err}"),
        }
    }
}

impl std::error::Error for ThreadPoolBuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(err) => Some(err),
            _ => None,
        }
    }
}

/// A work-stealing thread pool.
///
/// Dropping the pool lets its workers finish the jobs already queued, then exit; it does
/// not wait for them. While a job spawned on the pool ([`ThreadPool::spawn`] and the
/// like) has not finished, every worker stays (as in rayon): such a job may wait for
/// work it queued itself, which only another worker can run.
pub struct ThreadPool {
    registry: Arc<Registry>,
}

impl ThreadPool {
    /// Runs `op` on a worker of this pool and returns its result; `join`, `scope`,
    /// `spawn` and the `par_*` functions called inside use this pool.
    ///
    /// From a thread outside the pool this blocks the caller until `op` is done. From a
    /// worker of another pool it blocks that worker too (counted as blocked there, so
    /// that pool may start a spare) rather than running that pool's unrelated jobs on
    /// top of its stack. A panic in `op` is re-raised here.
    pub fn install<OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce() -> R + Send,
        R: Send,
    {
        self.registry.in_worker(|_| op())
    }

    /// [`scope`](crate::scope) on this pool.
    pub fn scope<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&Scope<'scope>) -> R + Send,
        R: Send,
    {
        in_scope_on(&self.registry, op)
    }

    /// [`spawn`](crate::spawn) on this pool.
    pub fn spawn<F>(&self, body: F)
    where
        F: FnOnce() + Send + 'static,
    {
        spawn_on(&self.registry, body)
    }

    /// [`spawn_fifo`](crate::spawn_fifo) on this pool.
    pub fn spawn_fifo<F>(&self, body: F)
    where
        F: FnOnce() + Send + 'static,
    {
        spawn_fifo_on(&self.registry, body)
    }

    /// [`scope_fifo`](crate::scope_fifo) on this pool.
    pub fn scope_fifo<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&ScopeFifo<'scope>) -> R + Send,
        R: Send,
    {
        self.scope(|s| op(ScopeFifo::view(s)))
    }

    /// A scope whose body runs on the calling thread (see
    /// [`in_place_scope`](crate::in_place_scope)) and whose jobs run on this pool.
    pub fn in_place_scope<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&Scope<'scope>) -> R,
    {
        in_place_scope_on(&self.registry, op)
    }

    /// [`ThreadPool::in_place_scope`] with FIFO spawns (see [`ScopeFifo`]).
    pub fn in_place_scope_fifo<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&ScopeFifo<'scope>) -> R,
    {
        in_place_scope_on(&self.registry, |s| op(ScopeFifo::view(s)))
    }

    /// [`broadcast`](crate::broadcast) on this pool.
    pub fn broadcast<OP, R>(&self, op: OP) -> Vec<R>
    where
        OP: Fn(BroadcastContext<'_>) -> R + Sync,
        R: Send,
    {
        broadcast_on(&self.registry, op)
    }

    /// [`spawn_broadcast`](crate::spawn_broadcast) on this pool.
    pub fn spawn_broadcast<OP>(&self, op: OP)
    where
        OP: Fn(BroadcastContext<'_>) + Send + Sync + 'static,
    {
        spawn_broadcast_on(&self.registry, op)
    }

    /// [`yield_now`](crate::yield_now) if the current thread is a worker of this pool,
    /// else `None`.
    pub fn yield_now(&self) -> Option<Yield> {
        worker_of(&self.registry).map(|worker| run_one(worker, false))
    }

    /// [`yield_local`](crate::yield_local) if the current thread is a worker of this
    /// pool, else `None`.
    pub fn yield_local(&self) -> Option<Yield> {
        worker_of(&self.registry).map(|worker| run_one(worker, true))
    }

    /// Whether the current worker has jobs of its own not started yet, if it is a
    /// worker of this pool.
    pub fn current_thread_has_pending_tasks(&self) -> Option<bool> {
        worker_of(&self.registry).map(WorkerThread::has_pending_tasks)
    }

    /// [`join`](crate::join) on this pool.
    pub fn join<A, B, RA, RB>(&self, oper_a: A, oper_b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        self.install(|| crate::join(oper_a, oper_b))
    }

    /// The number of threads that run jobs (spares started for blocked workers are not
    /// counted).
    pub fn current_num_threads(&self) -> usize {
        self.registry.num_threads
    }

    /// The most threads this pool may start.
    pub fn max_threads(&self) -> usize {
        self.registry.max_threads
    }

    /// The index of the current thread if it is a worker of this pool.
    pub fn current_thread_index(&self) -> Option<usize> {
        // SAFETY: null or this thread's live WorkerThread.
        unsafe { WorkerThread::current().as_ref() }
            .filter(|w| Arc::ptr_eq(&w.registry, &self.registry))
            .map(|w| w.registry.public_index(w.index))
    }

    /// A snapshot of the pool's thread and token counters.
    pub fn stats(&self) -> PoolStats {
        self.registry.stats()
    }

    /// What the pool recorded since it was built or since the previous call (empty
    /// unless built with [`ThreadPoolBuilder::trace`]). Intervals in flight, such as a
    /// sleeping worker's idle time, are closed at this moment and continue in the next
    /// trace.
    pub fn take_trace(&self) -> crate::trace::Trace {
        self.registry.trace.take(self.registry.num_threads)
    }

    /// Shuts the pool down and waits until every worker has finished the queued jobs
    /// (spawned jobs included, and whatever they queue) and exited (its thread-local
    /// destructors included), and every jobserver token is back. (Dropping the pool
    /// does the same without waiting.) Threads started by a
    /// [`spawn_handler`](ThreadPoolBuilder::spawn_handler) are waited for until they
    /// return from [`ThreadBuilder::run`]: what the handler's thread does after that is
    /// its own. Must not be called from one of the pool's own workers.
    pub fn shutdown(self) {
        let on_own_worker =
            worker_of(&self.registry).is_some_and(|worker| !self.registry.is_adopted(worker.index));
        assert!(
            !on_own_worker,
            "ThreadPool::shutdown called from one of its own workers"
        );
        self.registry.terminate();
        self.registry.wait_for_exit();
        self.registry.join_threads();
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.registry.terminate();
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("num_threads", &self.registry.num_threads)
            .field("max_threads", &self.registry.max_threads)
            .finish_non_exhaustive()
    }
}

/// How a builder starts worker threads (its type parameter): weft's own way
/// ([`DefaultSpawn`]) or a user's [`spawn_handler`](ThreadPoolBuilder::spawn_handler)
/// ([`CustomSpawn`]). Not implementable outside weft.
pub trait ThreadSpawn: sealed::Sealed {
    /// The user's handler, if any.
    #[doc(hidden)]
    fn spawner(&mut self) -> Option<Spawner<'_>>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::DefaultSpawn {}
    impl<F> Sealed for super::CustomSpawn<F> {}
}

/// A builder's default way of starting threads: weft starts them itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultSpawn;

impl ThreadSpawn for DefaultSpawn {
    fn spawner(&mut self) -> Option<Spawner<'_>> {
        None
    }
}

/// A builder's user-supplied way of starting threads (see
/// [`ThreadPoolBuilder::spawn_handler`]).
pub struct CustomSpawn<F>(F);

impl<F: FnMut(ThreadBuilder) -> io::Result<()>> ThreadSpawn for CustomSpawn<F> {
    fn spawner(&mut self) -> Option<Spawner<'_>> {
        Some(&mut self.0)
    }
}

impl<F> fmt::Debug for CustomSpawn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomSpawn")
    }
}
