//! `Engine`: the memo tables of every query type, and `run`.

use super::error::QueryError;
use super::graph::WaitGraph;
use super::job::QueryJob;
use super::revision::{Revisions, Stats};
use super::table::MemoTable;
use super::tables::TableMap;
use super::unwind::finish_run;
use super::{Cx, Input, Query};
use crate::pool::registry::{current_registry, StallListener};
use crate::serial::SerialEngine;

/// A demand-driven query engine: memoizes each `(query, key)` and computes it at most
/// once, in parallel on a weft pool ([`Engine::new`]) or serially ([`Engine::serial`]).
///
/// Memo tables persist across [`Engine::run`] calls. An engine is `Send` and `Sync`:
/// several threads (or pools) may run it at once, and share its memo tables.
///
/// An engine is made for one batch of inputs, or, with [`Engine::incremental`], for a
/// series of revisions: it then records what every query read, and after
/// [`Engine::set_input`] changes an input, the next run re-executes only the queries
/// that depend on a change (see [`Input`] for an example).
///
/// weft needs `panic = "unwind"`: panics in queries are caught and stored as
/// [`QueryError::Panicked`], and cycles are resolved by unwinding the participants.
/// Under `panic = "abort"` any panic, and any cycle, aborts the process.
///
/// ```
/// use weft::query::{Cx, Engine, Query};
///
/// struct Fib;
/// impl Query for Fib {
///     type Key = u64;
///     type Value = u64;
///     const NAME: &'static str = "fib";
///     fn compute(cx: &Cx<'_>, n: &u64) -> u64 {
///         if *n < 2 { return *n; }
///         let (a, b) = cx.join(|cx| cx.get::<Fib>(&(n - 1)), |cx| cx.get::<Fib>(&(n - 2)));
///         a + b
///     }
/// }
///
/// let pool = weft::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
/// let parallel = pool.install(|| Engine::new().run(|cx| cx.get::<Fib>(&80)));
/// let serial = Engine::serial().run(|cx| cx.get::<Fib>(&80));
/// assert_eq!(parallel, Ok(23_416_728_348_467_685));
/// assert_eq!(parallel, serial);
/// ```
pub struct Engine {
    kind: EngineKind,
}

enum EngineKind {
    Parallel(ParallelEngine),
    Serial(SerialEngine),
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    /// A parallel engine. Each `run` executes on the current pool: the one installed
    /// around the call, else the global pool.
    pub fn new() -> Self {
        Engine {
            kind: EngineKind::Parallel(ParallelEngine::new()),
        }
    }

    /// The serial reference engine: no pool, and no atomics or locks on the query path;
    /// `cx.join` and `cx.par_map` run their parts left to right. It gives the same
    /// values and reports as the parallel engine, for differential tests. Each `run`
    /// executes on a stack as deep as a worker's, so deep query chains behave as on the
    /// pool: on the calling thread (switched to a fresh stack and back), or on a thread
    /// of its own when called from a pool worker. One run at a time: a run nested in
    /// one of its own runs must be made on that run's thread (where it simply continues
    /// it); one made from another thread inside a run (a plain `weft::join` half, an
    /// `install`) panics with a message instead of waiting for the run forever.
    pub fn serial() -> Self {
        Engine {
            kind: EngineKind::Serial(SerialEngine::new()),
        }
    }

    /// True for [`Engine::serial`].
    pub fn is_serial(&self) -> bool {
        matches!(self.kind, EngineKind::Serial(_))
    }

    /// This engine, made incremental: its queries record what they read, and after an
    /// input changes ([`Engine::set_input`]) a run reuses every memo whose dependencies
    /// did not change and re-executes the others (red-green), stopping the spread of a
    /// change at any re-executed query whose value is [`Query::same`] as before (early
    /// cutoff). Values and reports are those a fresh engine computes from the current
    /// inputs, at any thread count and on the serial engine.
    ///
    /// Recording costs time and memory on every request (about 8 bytes per
    /// dependency), which is why it is a choice: an engine for one batch of inputs
    /// records nothing.
    ///
    /// # Panics
    /// If the engine has already run.
    pub fn incremental(mut self) -> Self {
        self.revisions_mut().make_incremental();
        self
    }

    /// True for an engine made with [`Engine::incremental`].
    pub fn is_incremental(&self) -> bool {
        self.revisions().incremental
    }

    /// What this engine did since its current revision began (the last input change
    /// after a run): how many queries executed, how many memos were reused as green,
    /// how many re-executions were cut off early. A batch engine counts nothing (its
    /// counts stay 0).
    pub fn stats(&self) -> Stats {
        self.revisions().stats()
    }

    /// Sets the value of input `(I, key)`.
    ///
    /// In an incremental engine, the first change after a run starts a new revision;
    /// the next run recomputes what depends on the changed inputs. A batch engine
    /// takes any inputs before its first run, and new keys (never read) after it.
    ///
    /// # Panics
    /// In a batch engine, when the key was read (or set) before a run: queries may have
    /// used the old value, and the engine did not record which (make it with
    /// [`Engine::incremental`]). Also while a run of this engine is in progress on
    /// another thread holding a memo of it (impossible through `&mut self` alone).
    pub fn set_input<I: Input>(&mut self, key: I::Key, value: I::Value) {
        match &mut self.kind {
            EngineKind::Parallel(engine) => {
                (engine.tables).set_input::<I>(&mut engine.revisions, key, value)
            }
            EngineKind::Serial(engine) => engine.set_input::<I>(key, value),
        }
    }

    fn revisions(&self) -> &Revisions {
        match &self.kind {
            EngineKind::Parallel(engine) => &engine.revisions,
            EngineKind::Serial(engine) => engine.revisions(),
        }
    }

    fn revisions_mut(&mut self) -> &mut Revisions {
        match &mut self.kind {
            EngineKind::Parallel(engine) => &mut engine.revisions,
            EngineKind::Serial(engine) => engine.revisions_mut(),
        }
    }

    /// The requests blocked right now, one line each (`` `q(k)` waits for `p(j)` ``):
    /// what to print when a run seems stuck. Empty for the serial engine.
    pub fn wait_graph(&self) -> String {
        match &self.kind {
            EngineKind::Parallel(engine) => engine.graph.report().to_string(),
            EngineKind::Serial(_) => String::new(),
        }
    }

    /// Runs `f` with a query context. Returns `Err` if `f` got an error from a `get`
    /// (a cycle it did not recover from, a panicked query, a deadlock) and let it
    /// propagate. A panic in `f` itself, outside any query, is re-raised.
    ///
    /// A run nested inside a query of the same engine is charged to that query: a
    /// request that closes a cycle through it (asking for the enclosing query itself,
    /// say) is reported as a cycle, as a direct request would be. The serial engine
    /// runs `f` on a stack as deep as a worker's (see [`Engine::serial`]).
    pub fn run<R, F>(&self, f: F) -> Result<R, QueryError>
    where
        F: FnOnce(&Cx<'_>) -> R + Send,
        R: Send,
    {
        match &self.kind {
            EngineKind::Parallel(engine) => {
                engine.revisions.run_started();
                let registry = current_registry();
                engine.trace.set(registry.trace.is_on());
                registry.in_worker(|_| {
                    let enclosing = QueryJob::enclosing(engine.tag());
                    let cx = Cx::parallel(engine, enclosing).for_nested_run(engine.tag());
                    finish_run(crate::pool::catch(|| f(&cx)))
                })
            }
            EngineKind::Serial(engine) => engine.run(f),
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_serial() {
            "Engine::serial()"
        } else {
            "Engine::new()"
        })?;
        if self.is_incremental() {
            f.write_str(".incremental()")?;
        }
        Ok(())
    }
}

/// The parallel engine's state.
pub(crate) struct ParallelEngine {
    pub(crate) tables: TableMap,
    /// The revision and what to record (see `revision.rs`).
    pub(crate) revisions: Revisions,
    /// Shared with the pools it blocks on, which tell it when they stall.
    pub(crate) graph: std::sync::Arc<WaitGraph>,
    /// The flag of the pool the current `run` uses: query sites read it instead of the
    /// pool's (see `crate::trace`).
    pub(crate) trace: crate::trace::TraceFlag,
}

impl ParallelEngine {
    fn new() -> Self {
        ParallelEngine {
            tables: TableMap::new(),
            revisions: Revisions::new(),
            graph: std::sync::Arc::new(WaitGraph::new()),
            trace: crate::trace::TraceFlag::new(false),
        }
    }

    /// The wait graph, as what a pool tells when it stalls.
    pub(crate) fn stall_listener(&self) -> std::sync::Arc<dyn StallListener> {
        self.graph.clone()
    }

    #[inline]
    pub(crate) fn table<Q: Query>(&self) -> &MemoTable<Q> {
        self.tables.get::<Q>()
    }
}
