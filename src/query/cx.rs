//! `Cx`: what a query (or `Engine::run`'s closure) uses to request queries and to run
//! work in parallel on behalf of the current query.

use std::cell::Cell;
use std::marker::PhantomData;

use super::engine::ParallelEngine;
use super::error::QueryError;
use super::job::QueryJob;
use super::unwind::{propagate, refused_in_recover};
use super::Query;
use crate::pool::context::{self, Context, ContextNode};
use crate::pool::FirstPanic;
use crate::serial::SerialState as SerialEngine;

/// The query context: requests go through it, and parallel work started through it
/// carries the current query into every job, stolen ones included.
pub struct Cx<'e> {
    inner: Inner<'e>,
}

#[derive(Clone, Copy)]
enum Inner<'e> {
    Parallel(ParallelCx<'e>),
    Serial {
        engine: &'e SerialEngine,
        recovering: Recovering<'e>,
    },
}

/// The parallel engine's part of a `Cx`: what its parallel work carries to other threads.
#[derive(Clone, Copy)]
struct ParallelCx<'e> {
    engine: &'e ParallelEngine,
    job: JobPtr,
    recovering: Recovering<'e>,
}

/// In the context given to `Query::recover`: the participant being recovered, as
/// `(NAME, key text)`. Such a context may read inputs only.
pub(crate) type Recovering<'e> = Option<&'e (&'static str, String)>;

/// The current query job, sent to the threads that run its parallel work.
#[derive(Clone, Copy)]
struct JobPtr(*const QueryJob);
// SAFETY: the job outlives all parallel work started from its compute (join, scope and
// par_* wait for their jobs), and `QueryJob` is `Sync`.
unsafe impl Send for JobPtr {}
// SAFETY: as above.
unsafe impl Sync for JobPtr {}

/// The context node `Cx::in_recover` enters while a `recover` runs, with the
/// participant it recovers (for the errors of refused requests).
#[repr(C)]
struct RecoverFrame {
    node: ContextNode,
    participant: *const (&'static str, String),
}

/// The context tag of a `recover` running for the engine whose jobs are tagged `tag`
/// (an engine's address, so its low bit is free).
fn recover_tag(tag: usize) -> usize {
    tag | 1
}

impl<'e> Cx<'e> {
    #[inline]
    pub(crate) fn parallel(engine: &'e ParallelEngine, job: Option<&QueryJob>) -> Self {
        Cx::with(Inner::Parallel(ParallelCx {
            engine,
            job: JobPtr(job.map_or(std::ptr::null(), |j| j as *const _)),
            recovering: None,
        }))
    }

    pub(crate) fn serial(engine: &'e SerialEngine) -> Self {
        Cx::with(Inner::Serial {
            engine,
            recovering: None,
        })
    }

    /// The context `Query::recover` gets: it may read inputs only (recorded as read by
    /// the participant, which is this context's query).
    pub(crate) fn recovering(&self, participant: &'e (&'static str, String)) -> Cx<'e> {
        Cx::with(match self.inner {
            Inner::Parallel(ParallelCx { engine, job, .. }) => Inner::Parallel(ParallelCx {
                engine,
                job,
                recovering: Some(participant),
            }),
            Inner::Serial { engine, .. } => Inner::Serial {
                engine,
                recovering: Some(participant),
            },
        })
    }

    /// Runs `f` (a `Query::recover`, with this recovering context) so that an
    /// `Engine::run` of the same engine nested in it, on any thread of its jobs, gets a
    /// recovering context too: a nested run must not get around the inputs-only rule
    /// (its requests could otherwise reach the very cycle being resolved).
    pub(crate) fn in_recover<R>(&self, f: impl FnOnce() -> R) -> R {
        let (tag, participant) = match self.inner {
            Inner::Parallel(ParallelCx {
                engine,
                recovering: Some(participant),
                ..
            }) => (engine.tag(), participant),
            Inner::Serial {
                engine,
                recovering: Some(participant),
            } => (engine as *const SerialEngine as usize, participant),
            _ => return f(),
        };
        let frame = RecoverFrame {
            node: ContextNode::tagged_child_of(context::current(), recover_tag(tag)),
            participant,
        };
        context::enter(Context::of(&frame.node), f)
    }

    /// This context, or its recovering form if the current code runs inside a
    /// `Query::recover` of the engine tagged `tag` (see [`Cx::in_recover`]): what a
    /// nested `Engine::run` gives its closure.
    pub(crate) fn for_nested_run(self, tag: usize) -> Cx<'e> {
        let Some((node, found)) = context::innermost_tagged_any(&[tag, recover_tag(tag)]) else {
            return self;
        };
        if found != recover_tag(tag) {
            return self;
        }
        // SAFETY: only `in_recover` tags a node with a recover tag, and a `RecoverFrame`
        // is `repr(C)` with that node first; the frame outlives every context below it
        // (context lifetime rule), so the participant it points to outlives this run,
        // which is nested in the recover.
        let participant: &'e (&'static str, String) =
            unsafe { &*(*(node as *const RecoverFrame)).participant };
        self.recovering(participant)
    }

    /// The value of `(Q, key)`, computing it if no one has.
    ///
    /// If the query has no value (a cycle without `recover`, a panic, a deadlock), the
    /// error unwinds out of the current query, which then fails with the same error,
    /// up to the nearest [`Cx::try_get`] or [`Engine::run`](super::Engine::run).
    #[inline(always)]
    pub fn get<Q: Query>(&self, key: &Q::Key) -> Q::Value {
        match self.try_get::<Q>(key) {
            Ok(value) => value,
            Err(error) => propagate(error),
        }
    }

    /// The value of `(Q, key)`, or why it has none.
    #[inline(always)]
    pub fn try_get<Q: Query>(&self, key: &Q::Key) -> Result<Q::Value, QueryError> {
        self.try_get_ref::<Q>(key).cloned()
    }

    /// A reference to the value of `(Q, key)`, computing it if no one has: like
    /// [`Cx::get`] without the clone, for large values and `Arc`s (a hit then writes
    /// no shared memory at all). The value lives as long as the engine.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weft::query::{Cx, Engine, Query};
    ///
    /// struct Lines;
    /// impl Query for Lines {
    ///     type Key = u32;
    ///     type Value = Arc<Vec<String>>;
    ///     const NAME: &'static str = "lines";
    ///     fn compute(_: &Cx<'_>, n: &u32) -> Arc<Vec<String>> {
    ///         Arc::new((0..*n).map(|i| format!("line {i}")).collect())
    ///     }
    /// }
    ///
    /// let engine = Engine::new();
    /// let total = engine.run(|cx| {
    ///     let lines: &Arc<Vec<String>> = cx.get_ref::<Lines>(&3);
    ///     lines.len()
    /// });
    /// assert_eq!(total, Ok(3));
    /// ```
    #[inline(always)]
    pub fn get_ref<Q: Query>(&self, key: &Q::Key) -> &'e Q::Value {
        match self.try_get_ref::<Q>(key) {
            Ok(value) => value,
            Err(error) => propagate(error),
        }
    }

    /// A reference to the value of `(Q, key)`, or why it has none (see [`Cx::get_ref`]).
    #[inline(always)]
    pub fn try_get_ref<Q: Query>(&self, key: &Q::Key) -> Result<&'e Q::Value, QueryError> {
        match self.inner {
            Inner::Parallel(ParallelCx {
                engine,
                job,
                recovering: None,
            }) => {
                // SAFETY: the job outlives this `Cx` (see `JobPtr`).
                let job = unsafe { job.0.as_ref() };
                if engine.revisions.incremental {
                    engine.fetch_incremental::<Q>(job, key)
                } else {
                    engine.fetch::<Q, false>(job, key)
                }
            }
            Inner::Serial {
                engine,
                recovering: None,
            } => {
                if engine.incremental {
                    engine.fetch_incremental::<Q>(key)
                } else {
                    engine.fetch::<Q, false>(key)
                }
            }
            _ => self.read_in_recover::<Q>(key),
        }
    }

    /// A request from `Query::recover`: inputs only.
    #[cold]
    #[inline(never)]
    fn read_in_recover<Q: Query>(&self, key: &Q::Key) -> Result<&'e Q::Value, QueryError> {
        let (input, participant) = match self.inner {
            Inner::Parallel(ParallelCx {
                engine,
                job,
                recovering: Some(participant),
            }) => {
                // SAFETY: the job outlives this `Cx` (see `JobPtr`).
                let job = unsafe { job.0.as_ref() };
                (engine.fetch_input::<Q>(job, key), participant)
            }
            Inner::Serial {
                engine,
                recovering: Some(participant),
            } => (engine.fetch_input::<Q>(key), participant),
            _ => unreachable!("called for a recovering context only"),
        };
        input.ok_or_else(|| refused_in_recover::<Q>(participant, key))
    }

    /// Runs `a` and `b`, potentially in parallel, for the current query.
    ///
    /// Both always run to completion; if either panics (or fails a `get`), the first
    /// one's failure wins, as with [`crate::join`].
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce(&Cx<'_>) -> RA + Send,
        B: FnOnce(&Cx<'_>) -> RB + Send,
        RA: Send,
        RB: Send,
    {
        match self.inner {
            Inner::Parallel(par) => crate::join(
                move || a(&Cx::with(Inner::Parallel(par))),
                move || b(&Cx::with(Inner::Parallel(par))),
            ),
            Inner::Serial { .. } => {
                // Left to right, with `join`'s panic rules: both run, first panic wins.
                let ra = crate::pool::catch(|| a(self));
                let rb = crate::pool::catch(|| b(self));
                crate::pool::combine(ra, rb)
            }
        }
    }

    /// A scope whose spawned jobs run for the current query; returns when all are done.
    ///
    /// Every spawned job runs even if some fail; the failure re-raised is the first in
    /// spawn order (see [`crate::scope`]), so both engines store the same error.
    pub fn scope<'scope, OP, R>(&'scope self, op: OP) -> R
    where
        OP: FnOnce(&QueryScope<'_, 'scope>) -> R + Send,
        R: Send,
    {
        let inner = self.inner;
        match inner {
            Inner::Parallel(par) => crate::scope(move |scope| {
                op(&QueryScope {
                    inner: ScopeInner::Parallel { scope, par },
                })
            }),
            Inner::Serial { .. } => {
                let scope = QueryScope {
                    inner: ScopeInner::Serial {
                        inner,
                        first_panic: FirstPanic::new(),
                        spawned: Cell::new(0),
                        marker: PhantomData,
                    },
                };
                let result = crate::pool::catch(|| op(&scope));
                let ScopeInner::Serial { first_panic, .. } = scope.inner else {
                    unreachable!("built as serial above")
                };
                match (first_panic.take(), result) {
                    (Some(first), result) => {
                        if let Err(later) = result {
                            crate::pool::drop_payload(later);
                        }
                        std::panic::resume_unwind(first)
                    }
                    (None, Ok(value)) => value,
                    (None, Err(payload)) => std::panic::resume_unwind(payload),
                }
            }
        }
    }

    /// Calls `f` on every item, potentially in parallel, for the current query. Every
    /// item runs even if some fail; the leftmost failure is re-raised.
    pub fn par_for_each<T, F>(&self, items: &[T], f: F)
    where
        T: Sync,
        F: Fn(&Cx<'_>, &T) + Sync,
    {
        match self.inner {
            Inner::Parallel(par) => {
                crate::par_for_each(items, |item| f(&Cx::with(Inner::Parallel(par)), item))
            }
            Inner::Serial { .. } => crate::pool::each_item(items.iter(), |item| f(self, item)),
        }
    }

    /// Maps `f` over the items, potentially in parallel, for the current query; results
    /// are in input order. Every item runs even if some fail; the leftmost failure is
    /// re-raised.
    pub fn par_map<T, U, F>(&self, items: &[T], f: F) -> Vec<U>
    where
        T: Sync,
        U: Send,
        F: Fn(&Cx<'_>, &T) -> U + Sync,
    {
        match self.inner {
            Inner::Parallel(par) => {
                crate::par_map(items, |item| f(&Cx::with(Inner::Parallel(par)), item))
            }
            Inner::Serial { .. } => {
                let mut out = Vec::with_capacity(items.len());
                crate::pool::each_item(items.iter(), |item| out.push(f(self, item)));
                out
            }
        }
    }

    /// A `Cx` over `inner` (for a query, or for parallel work of the current query).
    fn with(inner: Inner<'e>) -> Self {
        Cx { inner }
    }
}

/// A scope opened by [`Cx::scope`]: spawned jobs run for the query that opened it.
pub struct QueryScope<'a, 'scope> {
    inner: ScopeInner<'a, 'scope>,
}

enum ScopeInner<'a, 'scope> {
    Parallel {
        scope: &'a crate::Scope<'scope>,
        par: ParallelCx<'scope>,
    },
    Serial {
        inner: Inner<'scope>,
        /// The first failure among the spawns (they run at once, so in spawn order).
        first_panic: FirstPanic<u32>,
        spawned: Cell<u32>,
        marker: PhantomData<&'a ()>,
    },
}

impl<'scope> QueryScope<'_, 'scope> {
    /// Spawns `body` into the scope (the serial engine runs it at once).
    pub fn spawn<F>(&self, body: F)
    where
        F: FnOnce(&Cx<'_>) + Send + 'scope,
    {
        match &self.inner {
            ScopeInner::Parallel { scope, par } => {
                let par = *par;
                scope.spawn(move |_| body(&Cx::with(Inner::Parallel(par))))
            }
            ScopeInner::Serial {
                inner,
                first_panic,
                spawned,
                ..
            } => {
                let at = spawned.replace(spawned.get() + 1);
                if let Err(payload) = crate::pool::catch(|| body(&Cx::with(*inner))) {
                    first_panic.offer(at, payload);
                }
            }
        }
    }
}
