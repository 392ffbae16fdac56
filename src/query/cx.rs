//! `Cx`: what a query (or `Engine::run`'s closure) uses to request queries and to run
//! work in parallel on behalf of the current query.

use std::marker::PhantomData;

use super::engine::ParallelEngine;
use super::error::QueryError;
use super::job::QueryJob;
use super::table::{pin_frame, FrameGuard};
use super::unwind::propagate;
use super::Query;
use crate::serial::SerialState as SerialEngine;

/// The query context: requests go through it, and parallel work started through it
/// carries the current query into every job, stolen ones included.
pub struct Cx<'e> {
    inner: Inner<'e>,
    /// Query frames of the parallel engine only: see `FrameGuard`.
    _frame: Option<FrameGuard>,
}

#[derive(Clone, Copy)]
enum Inner<'e> {
    Parallel {
        engine: &'e ParallelEngine,
        job: JobPtr,
    },
    Serial(&'e SerialEngine),
}

/// The current query job, sent to the threads that run its parallel work.
#[derive(Clone, Copy)]
struct JobPtr(*const QueryJob);
// SAFETY: the job outlives all parallel work started from its compute (join, scope and
// par_* wait for their jobs), and `QueryJob` is `Sync`.
unsafe impl Send for JobPtr {}
// SAFETY: as above.
unsafe impl Sync for JobPtr {}

impl<'e> Cx<'e> {
    pub(crate) fn parallel(engine: &'e ParallelEngine, job: Option<&QueryJob>) -> Self {
        Cx {
            inner: Inner::Parallel {
                engine,
                job: JobPtr(job.map_or(std::ptr::null(), |j| j as *const _)),
            },
            _frame: Some(pin_frame()),
        }
    }

    pub(crate) fn serial(engine: &'e SerialEngine) -> Self {
        Cx::with(Inner::Serial(engine))
    }

    /// The value of `(Q, key)`, computing it if no one has.
    ///
    /// If the query has no value (a cycle without `recover`, a panic, a deadlock), the
    /// error unwinds out of the current query, which then fails with the same error,
    /// up to the nearest [`Cx::try_get`] or [`Engine::run`](super::Engine::run).
    #[inline]
    pub fn get<Q: Query>(&self, key: &Q::Key) -> Q::Value {
        match self.try_get::<Q>(key) {
            Ok(value) => value,
            Err(error) => propagate(error),
        }
    }

    /// The value of `(Q, key)`, or why it has none.
    #[inline]
    pub fn try_get<Q: Query>(&self, key: &Q::Key) -> Result<Q::Value, QueryError> {
        match self.inner {
            Inner::Parallel { engine, job, .. } => {
                // SAFETY: the job outlives this `Cx` (see `JobPtr`).
                engine.fetch::<Q>(unsafe { job.0.as_ref() }, key)
            }
            Inner::Serial(engine) => engine.fetch::<Q>(self, key),
        }
    }

    /// Runs `a` and `b`, potentially in parallel, for the current query.
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce(&Cx<'_>) -> RA + Send,
        B: FnOnce(&Cx<'_>) -> RB + Send,
        RA: Send,
        RB: Send,
    {
        match self.inner {
            Inner::Parallel { engine, job } => crate::join(
                move || a(&Cx::with(Inner::Parallel { engine, job })),
                move || b(&Cx::with(Inner::Parallel { engine, job })),
            ),
            Inner::Serial(_) => {
                // Left to right, with `join`'s panic rules: both run, first panic wins.
                let ra = crate::pool::catch(|| a(self));
                let rb = crate::pool::catch(|| b(self));
                match (ra, rb) {
                    (Ok(ra), Ok(rb)) => (ra, rb),
                    (Err(p), _) | (_, Err(p)) => std::panic::resume_unwind(p),
                }
            }
        }
    }

    /// A scope whose spawned jobs run for the current query; returns when all are done.
    pub fn scope<'scope, OP, R>(&'scope self, op: OP) -> R
    where
        OP: FnOnce(&QueryScope<'_, 'scope>) -> R + Send,
        R: Send,
    {
        match self.inner {
            Inner::Parallel { engine, job } => crate::scope(move |scope| {
                op(&QueryScope {
                    inner: ScopeInner::Parallel { scope, engine, job },
                })
            }),
            Inner::Serial(engine) => op(&QueryScope {
                inner: ScopeInner::Serial(engine, PhantomData),
            }),
        }
    }

    /// Calls `f` on every item, potentially in parallel, for the current query.
    pub fn par_for_each<T, F>(&self, items: &[T], f: F)
    where
        T: Sync,
        F: Fn(&Cx<'_>, &T) + Sync,
    {
        match self.inner {
            Inner::Parallel { engine, job } => crate::par_for_each(items, |item| {
                f(&Cx::with(Inner::Parallel { engine, job }), item)
            }),
            Inner::Serial(_) => items.iter().for_each(|item| f(self, item)),
        }
    }

    /// Maps `f` over the items, potentially in parallel, for the current query; results
    /// are in input order.
    pub fn par_map<T, U, F>(&self, items: &[T], f: F) -> Vec<U>
    where
        T: Sync,
        U: Send,
        F: Fn(&Cx<'_>, &T) -> U + Sync,
    {
        match self.inner {
            Inner::Parallel { engine, job } => crate::par_map(items, |item| {
                f(&Cx::with(Inner::Parallel { engine, job }), item)
            }),
            Inner::Serial(_) => items.iter().map(|item| f(self, item)).collect(),
        }
    }

    /// A `Cx` for parallel work of the current query. It does not pin: on the query's
    /// own thread its hits nest under the query's guard; in a stolen job each hit pins.
    /// (Pinning here measured 3x slower per `par_for_each` item: `benches/query.rs`.)
    fn with(inner: Inner<'e>) -> Self {
        Cx {
            inner,
            _frame: None,
        }
    }
}

/// A scope opened by [`Cx::scope`]: spawned jobs run for the query that opened it.
pub struct QueryScope<'a, 'scope> {
    inner: ScopeInner<'a, 'scope>,
}

enum ScopeInner<'a, 'scope> {
    Parallel {
        scope: &'a crate::Scope<'scope>,
        engine: &'scope ParallelEngine,
        job: JobPtr,
    },
    Serial(&'scope SerialEngine, PhantomData<&'a ()>),
}

impl<'scope> QueryScope<'_, 'scope> {
    /// Spawns `body` into the scope (the serial engine runs it at once).
    pub fn spawn<F>(&self, body: F)
    where
        F: FnOnce(&Cx<'_>) + Send + 'scope,
    {
        match self.inner {
            ScopeInner::Parallel { scope, engine, job } => {
                scope.spawn(move |_| body(&Cx::with(Inner::Parallel { engine, job })))
            }
            ScopeInner::Serial(engine, _) => body(&Cx::serial(engine)),
        }
    }
}
