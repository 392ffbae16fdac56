//! What a request can get instead of a value: [`QueryError`], the [`Cycle`] report, the
//! shared [`PanicPayload`] of a poisoned query and the [`WaitGraphReport`] of a deadlock.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// A closed chain of waits among in-progress queries.
///
/// The participants are listed in canonical order: the chain is rotated to start at the
/// least `(query name, key)`, so every thread count and schedule prints the same report.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cycle {
    participants: Arc<[(&'static str, String)]>,
}

impl Cycle {
    /// Builds a cycle from participants in wait order (each waits for the next, the last
    /// for the first), rotating it to canonical order. `least` is the index of the least
    /// participant, as decided by the caller (which can compare keys by `Ord`).
    pub(crate) fn new(mut participants: Vec<(&'static str, String)>, least: usize) -> Self {
        participants.rotate_left(least);
        Cycle {
            participants: participants.into(),
        }
    }

    /// `(query name, key as Debug text)` of every participant, in canonical order:
    /// each requires the next, and the last requires the first.
    pub fn participants(&self) -> &[(&'static str, String)] {
        &self.participants
    }
}

impl fmt::Debug for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.participants.iter().map(|(q, k)| format!("{q}({k})")))
            .finish()
    }
}

/// The report rustc users know (E0391's shape), one line per participant.
impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [(first_q, first_k), rest @ ..] = &*self.participants else {
            return f.write_str("empty cycle");
        };
        write!(f, "cycle detected when computing `{first_q}({first_k})`")?;
        if rest.is_empty() {
            return write!(
                f,
                "\n  ...which immediately requires computing `{first_q}({first_k})` again"
            );
        }
        for (q, k) in rest {
            write!(f, "\n  ...which requires computing `{q}({k})`...")?;
        }
        write!(
            f,
            "\n  ...which again requires computing `{first_q}({first_k})`, completing the cycle"
        )
    }
}

/// Why a query has no value.
///
/// Errors compare by what they report: two `Panicked` errors are equal when they name the
/// same query, key and message, whatever their payloads (so results of the serial and the
/// parallel engine can be compared).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum QueryError {
    /// The query took part in a cycle (or depends on a participant that had no
    /// `recover` value).
    Cycle(Cycle),
    /// The query (or one it depends on) panicked; the entry is poisoned.
    Panicked {
        /// `Query::NAME` of the query that panicked.
        query: &'static str,
        /// Its key, as `Debug` text.
        key: String,
        /// The original panic message (`&str` and `String` payloads; a placeholder for
        /// others).
        message: String,
        /// The original payload, shared by every request that gets this error: find a
        /// marker type with [`PanicPayload::downcast_ref`], or re-raise it with
        /// [`QueryError::resume_unwind`].
        payload: PanicPayload,
    },
    /// [`Query::recover`](super::Query::recover) requested a query that is not an
    /// input. A recovery runs while its cycle is being unwound, when what other queries
    /// would see depends on timing; it may read inputs only (see `Query::recover`).
    RequestInRecover {
        /// The participant whose `recover` made the request, as `query(key)`.
        recovering: String,
        /// The query requested, as `query(key)`.
        requested: String,
    },
    /// The pool could run nothing while queries were blocked, and no cycle explains
    /// it. This indicates a bug (or `max_threads` set too low); the report lists the
    /// wait graph.
    Deadlock(WaitGraphReport),
    /// An [`Input`](super::Input) was read for a key that was never set with
    /// [`Engine::set_input`](super::Engine::set_input).
    InputNotSet {
        /// `Input::NAME` of the input.
        input: &'static str,
        /// The key, as `Debug` text.
        key: String,
    },
}

impl QueryError {
    /// The payload of the panic behind a [`QueryError::Panicked`].
    pub fn panic_payload(&self) -> Option<&PanicPayload> {
        match self {
            QueryError::Panicked { payload, .. } => Some(payload),
            _ => None,
        }
    }

    /// Re-raises the error as a panic: a `Panicked` error with its original payload
    /// wrapped in a [`PanicPayload`] (so a fatal-error marker survives: catch the unwind
    /// and look for it with [`PanicPayload::downcast_ref`]); any other error with the
    /// `QueryError` itself as the payload. The panic hook does not run again.
    pub fn resume_unwind(self) -> ! {
        match self {
            QueryError::Panicked { payload, .. } => std::panic::resume_unwind(Box::new(payload)),
            other => std::panic::resume_unwind(Box::new(other)),
        }
    }
}

impl PartialEq for QueryError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (QueryError::Cycle(a), QueryError::Cycle(b)) => a == b,
            (
                QueryError::Panicked {
                    query: qa,
                    key: ka,
                    message: ma,
                    ..
                },
                QueryError::Panicked {
                    query: qb,
                    key: kb,
                    message: mb,
                    ..
                },
            ) => (qa, ka, ma) == (qb, kb, mb),
            (
                QueryError::RequestInRecover {
                    recovering: ra,
                    requested: qa,
                },
                QueryError::RequestInRecover {
                    recovering: rb,
                    requested: qb,
                },
            ) => (ra, qa) == (rb, qb),
            (QueryError::Deadlock(a), QueryError::Deadlock(b)) => a == b,
            (
                QueryError::InputNotSet { input: ia, key: ka },
                QueryError::InputNotSet { input: ib, key: kb },
            ) => (ia, ka) == (ib, kb),
            _ => false,
        }
    }
}

impl Eq for QueryError {}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Cycle(cycle) => cycle.fmt(f),
            QueryError::Panicked {
                query,
                key,
                message,
                ..
            } => write!(f, "query `{query}({key})` panicked: {message}"),
            QueryError::RequestInRecover {
                recovering,
                requested,
            } => write!(
                f,
                "`recover` of `{recovering}` requested `{requested}`: a recovery may only read inputs"
            ),
            QueryError::Deadlock(graph) => write!(f, "deadlock among queries:\n{graph}"),
            QueryError::InputNotSet { input, key } => {
                write!(f, "the input `{input}({key})` was read but never set")
            }
        }
    }
}

impl std::error::Error for QueryError {}

/// The payload of the panic that poisoned a query, shared by every request that gets
/// the error.
///
/// A payload is `Send` but not necessarily `Sync`, so it can only be looked at as a type
/// that is `Sync` ([`PanicPayload::downcast_ref`]); the marker types compilers raise
/// (`struct FatalError;`) and panic messages are.
#[derive(Clone)]
pub struct PanicPayload(Arc<SharedPayload>);

struct SharedPayload(Box<dyn Any + Send>);

// SAFETY: the boxed payload is only ever borrowed as a `T: Sync` (`downcast_ref`), and
// dropped by whichever thread drops the last `Arc`, which `Send` allows.
unsafe impl Sync for SharedPayload {}

impl PanicPayload {
    pub(crate) fn new(payload: Box<dyn Any + Send>) -> Self {
        PanicPayload(Arc::new(SharedPayload(payload)))
    }

    /// The payload as a `T`, if it is one.
    ///
    /// ```
    /// use weft::query::{Cx, Engine, Query};
    /// struct FatalError;
    /// struct Fails;
    /// impl Query for Fails {
    ///     type Key = ();
    ///     type Value = ();
    ///     const NAME: &'static str = "fails";
    ///     fn compute(_: &Cx<'_>, _: &()) {
    ///         std::panic::resume_unwind(Box::new(FatalError))
    ///     }
    /// }
    /// let err = Engine::serial().run(|cx| cx.try_get::<Fails>(&())).unwrap().unwrap_err();
    /// assert!(err.panic_payload().unwrap().downcast_ref::<FatalError>().is_some());
    /// ```
    pub fn downcast_ref<T: Any + Sync>(&self) -> Option<&T> {
        self.0 .0.downcast_ref::<T>()
    }

    /// True if the payload is a `T`.
    pub fn is<T: Any + Sync>(&self) -> bool {
        self.0 .0.is::<T>()
    }

    /// The panic message: the payload if it is a `&str` or a `String`.
    pub fn message(&self) -> Option<&str> {
        if let Some(s) = self.downcast_ref::<&'static str>() {
            Some(s)
        } else {
            self.downcast_ref::<String>().map(String::as_str)
        }
    }
}

impl fmt::Debug for PanicPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(message) => f.debug_tuple("PanicPayload").field(&message).finish(),
            None => f.write_str("PanicPayload(<non-string payload>)"),
        }
    }
}

/// A deadlock report: every blocked request and what it waits for.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WaitGraphReport {
    edges: Vec<WaitEdge>,
}

/// One blocked request in a [`WaitGraphReport`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WaitEdge {
    /// The waiting query as `(NAME, key text)`, or `None` for the root of `Engine::run`.
    pub waiter: Option<(&'static str, String)>,
    /// The query it waits for, as `(NAME, key text)`.
    pub owner: (&'static str, String),
}

impl WaitGraphReport {
    /// A report of `edges`, sorted and without duplicates.
    pub(crate) fn new(mut edges: Vec<WaitEdge>) -> Self {
        edges.sort();
        edges.dedup();
        WaitGraphReport { edges }
    }

    /// The blocked requests, sorted.
    pub fn edges(&self) -> &[WaitEdge] {
        &self.edges
    }
}

/// One line per blocked request: `` `q(k)` waits for `p(j)` ``.
impl fmt::Display for WaitGraphReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, edge) in self.edges.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match &edge.waiter {
                Some((q, k)) => write!(f, "  `{q}({k})`")?,
                None => f.write_str("  the root of `Engine::run`")?,
            }
            write!(f, " waits for `{}({})`", edge.owner.0, edge.owner.1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle(parts: &[(&'static str, &str)], least: usize) -> Cycle {
        Cycle::new(
            parts.iter().map(|(q, k)| (*q, k.to_string())).collect(),
            least,
        )
    }

    #[test]
    fn report_starts_at_the_least_participant() {
        let c = cycle(&[("type_of", "B"), ("type_of", "A")], 1);
        assert_eq!(
            c.to_string(),
            "cycle detected when computing `type_of(A)`\n  \
             ...which requires computing `type_of(B)`...\n  \
             ...which again requires computing `type_of(A)`, completing the cycle"
        );
    }

    #[test]
    fn self_cycle_report() {
        let c = cycle(&[("q", "K")], 0);
        assert_eq!(
            c.to_string(),
            "cycle detected when computing `q(K)`\n  ...which immediately requires computing `q(K)` again"
        );
    }
}
