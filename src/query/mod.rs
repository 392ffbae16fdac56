//! The query engine: memoized queries on a weft pool, with blocking waits, cycles
//! detected as they close and resolved the same way at any thread count, panics that
//! poison entries, and a serial reference engine.
//!
//! Files in the order a request goes through them: [`Query`] (here), `cx` (the
//! request), `fetch` (hit -> claim -> execute -> complete, or wait), `table` (the memo
//! table), `job` (a query in progress), `graph` (waits and cycles), `unwind` (how
//! errors travel and what a query stores), `error` (what callers see).
//!
//! # Semantics
//!
//! - Each `(Q, key)` is computed at most once per [`Engine`]; a hit on a finished entry
//!   takes no lock and writes no shared cache line ([`Cx::get_ref`] borrows the value;
//!   [`Cx::get`] clones it).
//! - A request for a key in progress elsewhere suspends its fiber (see the pool's
//!   `fiber.rs`) until the owner completes: it holds no thread, and nothing runs on top
//!   of the waiting frame, so no false dependency is ever created.
//! - A cycle is detected when the wait that closes it is registered. Every participant
//!   unwinds; one whose query has [`Query::recover`] stores that value, the others store
//!   [`QueryError::Cycle`]. Callers outside the cycle continue with those results.
//! - A panicking query poisons its entry: every waiter and later request gets
//!   [`QueryError::Panicked`] with the original message.
//! - If no worker of a pool can run anything while requests are blocked there, and no
//!   thread is inside `weft::blocking` or waiting on another pool (an exact condition,
//!   no timer), the blocked requests get [`QueryError::Deadlock`] with the wait graph.

use std::fmt::Debug;
use std::hash::Hash;

mod cx;
mod engine;
mod error;
mod fetch;
mod graph;
mod job;
mod pages;
mod table;
mod tables;
mod unwind;

pub use cx::{Cx, QueryScope};
pub use engine::Engine;
pub use error::{Cycle, PanicPayload, QueryError, WaitEdge, WaitGraphReport};

pub(crate) use cx::Recovering;
pub(crate) use job::{canonical_cmp, key_text, ErasedKey};
pub(crate) use table::{hash_key, state, Claim, Memo, MemoTable, Slot};
pub(crate) use tables::TableMap;
pub(crate) use unwind::{finish_run, request_in_recover, settle, unwind_cycle};

/// A query: a pure function of its key that may request other queries through `cx`.
pub trait Query: 'static {
    /// What the query is computed for.
    type Key: Clone + Eq + Hash + Ord + Debug + Send + Sync;
    /// What it computes (cloned out of the memo by [`Cx::get`]: make it cheap, or read
    /// it with [`Cx::get_ref`]).
    type Value: Clone + Send + Sync;
    /// The name used in reports, e.g. `type_of`.
    const NAME: &'static str;

    /// Computes the value.
    fn compute(cx: &Cx<'_>, key: &Self::Key) -> Self::Value;

    /// The value this query takes when it is found in a cycle, or `None` to store
    /// [`QueryError::Cycle`] instead.
    ///
    /// `recover` runs while its cycle is being unwound, outside any query: through `cx`
    /// it may read **inputs** (values set with [`Engine::set_input`]) and nothing else.
    /// Any other request gets [`QueryError::RequestInRecover`] (deterministically:
    /// whether another query is done at that moment depends on timing), and letting it
    /// propagate (with `cx.get`) stores that error for this participant. A `recover`
    /// that panics poisons this participant like a panicking `compute`. Either way
    /// every waiter is released: a recovery never leaves its entry in progress.
    fn recover(cx: &Cx<'_>, key: &Self::Key, cycle: &Cycle) -> Option<Self::Value> {
        let _ = (cx, key, cycle);
        None
    }
}
