//! `ThreadPoolBuilder` and `ThreadPool`: configuring, building and using a pool.

use std::any::Any;
use std::fmt;
use std::io;

use super::registry::{
    set_global_registry, PanicHandler, PoolConfig, PoolStats, Registry, ThreadNamer,
};
use super::scope::{in_scope_on, Scope};
use super::spawn::spawn_on;
use super::tokens::TokenPool;
use super::unwind::{catch, drop_payload, panic_text};
use super::worker::WorkerThread;
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
#[derive(Default)]
pub struct ThreadPoolBuilder {
    num_threads: usize,
    max_threads: Option<usize>,
    stack_size: Option<usize>,
    thread_name: Option<Box<ThreadNamer>>,
    panic_handler: Option<Box<PanicHandler>>,
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

impl ThreadPoolBuilder {
    /// A builder with the defaults: one thread per CPU (or `WEFT_NUM_THREADS`), a spare
    /// thread standing in for each worker inside `weft::blocking` (up to
    /// [`DEFAULT_MAX_SPARES`]), 1 GiB of reserved stack each (threads and fibers), and
    /// the inherited jobserver if any.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of threads that run jobs. 0 (the default) means the environment
    /// variable `WEFT_NUM_THREADS` if set to a positive number, else the number of CPUs.
    pub fn num_threads(mut self, num_threads: usize) -> Self {
        self.num_threads = num_threads;
        self
    }

    /// The most threads the pool may have at once, counting the spares that stand in
    /// for workers inside [`crate::blocking`] (the only wait that holds a thread:
    /// waits on queries, joins, scopes and other pools suspend fibers instead).
    /// Defaults to `num_threads + DEFAULT_MAX_SPARES`; must not be below `num_threads`.
    /// A lower limit can stall a program whose blocking calls wait for each other's
    /// jobs: past it, a blocked worker gets no stand-in.
    pub fn max_threads(mut self, max_threads: usize) -> Self {
        self.max_threads = Some(max_threads);
        self
    }

    /// Stack size of each worker thread, in bytes.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Names worker threads: called with each worker's index, for every thread the
    /// pool may start (spares included), once, by `build`. A namer that panics makes
    /// `build` fail; no thread is started then.
    pub fn thread_name<F>(mut self, name: F) -> Self
    where
        F: FnMut(usize) -> String + 'static,
    {
        self.thread_name = Some(Box::new(name));
        self
    }

    /// Called with the payload of a panic in a `spawn`ed job. Panics in `join` and
    /// `scope` are re-raised in the caller instead.
    pub fn panic_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(Box<dyn Any + Send>) + Send + Sync + 'static,
    {
        self.panic_handler = Some(Box::new(handler));
        self
    }

    /// Takes CPU budget from this jobserver: besides the process's implicit token,
    /// every running worker holds one of its tokens. By default a pool uses the
    /// jobserver inherited from Cargo or make, if the process has one (and under
    /// `make -j1`, which starts none, runs one worker at a time).
    pub fn jobserver(mut self, client: jobserver::Client) -> Self {
        self.jobserver = JobserverChoice::Client(client);
        self
    }

    /// Ignores any inherited jobserver: up to `num_threads` workers run.
    pub fn no_jobserver(mut self) -> Self {
        self.jobserver = JobserverChoice::None;
        self
    }

    /// Records what every worker does, for [`ThreadPool::take_trace`] (see
    /// [`crate::trace`]). Off by default; off, each event site costs one relaxed load.
    pub fn trace(mut self, on: bool) -> Self {
        self.trace = on;
        self
    }

    fn resolved_num_threads(&self) -> usize {
        if self.num_threads > 0 {
            return self.num_threads;
        }
        if let Some(n) = std::env::var("WEFT_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
        {
            return n;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
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

    pub(crate) fn into_config(mut self) -> Result<PoolConfig, ThreadPoolBuildError> {
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

    /// Loom models only: limits the pool by a modelled jobserver of `limit` tokens.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn model_jobserver(mut self, limit: usize) -> (Self, Arc<super::tokens::ModelJobserver>) {
        let (tokens, model) = TokenPool::with_model_limit(limit);
        self.jobserver = JobserverChoice::Model(tokens);
        (self, model)
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
            tokens,
            trace: self.trace,
        })
    }

    /// Builds the pool and starts its threads.
    pub fn build(self) -> Result<ThreadPool, ThreadPoolBuildError> {
        self.validate()?;
        let registry = Registry::new(self.into_config()?)
            .map_err(|e| ThreadPoolBuildError::new(ErrorKind::Io(e)))?;
        Ok(ThreadPool { registry })
    }

    /// Builds the pool and makes it the global pool used outside any `install`.
    /// Fails if the global pool already exists (it is built on first use).
    pub fn build_global(self) -> Result<(), ThreadPoolBuildError> {
        self.validate()?;
        let registry = Registry::new(self.into_config()?)
            .map_err(|e| ThreadPoolBuildError::new(ErrorKind::Io(e)))?;
        set_global_registry(registry).map_err(|unused| {
            unused.terminate();
            ThreadPoolBuildError::new(ErrorKind::GlobalPoolAlreadyInitialized)
        })
    }
}

/// Every slot's thread name, from the user's namer (caught if it panics) or the default.
fn thread_names(
    namer: Option<Box<ThreadNamer>>,
    max_threads: usize,
) -> Result<Vec<String>, ThreadPoolBuildError> {
    let Some(mut namer) = namer else {
        return Ok((0..max_threads)
            .map(|index| format!("weft-worker-{index}"))
            .collect());
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
    Ok(names)
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("num_threads", &self.num_threads)
            .field("max_threads", &self.max_threads)
            .field("stack_size", &self.stack_size)
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
            ErrorKind::GlobalPoolAlreadyInitialized => {
                f.write_str("the global thread pool has already been initialized")
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
/// not wait for them.
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
            .map(|w| w.index)
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
    /// and exited, and every jobserver token is back. (Dropping the pool does the same
    /// without waiting.) Must not be called from one of the pool's own workers.
    pub fn shutdown(self) {
        assert!(
            self.current_thread_index().is_none(),
            "ThreadPool::shutdown called from one of its own workers"
        );
        self.registry.terminate();
        self.registry.wait_for_exit();
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
