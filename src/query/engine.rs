//! `Engine`: the memo tables of every query type, and `run`.

use super::error::QueryError;
use super::graph::WaitGraph;
use super::job::QueryJob;
use super::table::{hash_key, MemoTable};
use super::tables::TableMap;
use super::unwind::finish_run;
use super::{Cx, Query};
use crate::pool::registry::{current_registry, StallListener};
use crate::serial::SerialEngine;

/// A demand-driven query engine: memoizes each `(query, key)` and computes it at most
/// once, in parallel on a weft pool ([`Engine::new`]) or serially ([`Engine::serial`]).
///
/// Memo tables persist across [`Engine::run`] calls. An engine is `Send` and `Sync`:
/// several threads (or pools) may run it at once, and share its memo tables.
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
    /// of its own when called from a pool worker.
    pub fn serial() -> Self {
        Engine {
            kind: EngineKind::Serial(SerialEngine::new()),
        }
    }

    /// True for [`Engine::serial`].
    pub fn is_serial(&self) -> bool {
        matches!(self.kind, EngineKind::Serial(_))
    }

    /// Sets the value of `(Q, key)` as an input: requests get it without computing.
    ///
    /// Set inputs before the runs that read them: there is no incremental
    /// recomputation, so queries already computed from an older value keep theirs.
    pub fn set_input<Q: Query>(&mut self, key: Q::Key, value: Q::Value) {
        match &mut self.kind {
            EngineKind::Parallel(engine) => {
                let hash = hash_key(&key);
                engine.tables.get_mut::<Q>().set(hash, key, value)
            }
            EngineKind::Serial(engine) => engine.set_input::<Q>(key, value),
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
                let registry = current_registry();
                engine.trace.set(registry.trace.is_on());
                registry.in_worker(|_| {
                    let enclosing = QueryJob::enclosing(engine.tag());
                    finish_run(crate::pool::catch(|| f(&Cx::parallel(engine, enclosing))))
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
        })
    }
}

/// The parallel engine's state.
pub(crate) struct ParallelEngine {
    tables: TableMap,
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
