//! The query engine: memoized queries on a weft pool, with blocking waits, cycles
//! detected as they close and resolved the same way at any thread count (when no two
//! cycles share a participant), panics that poison entries, and a serial reference
//! engine.
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
//!   Cycles that share no participant are resolved identically at every thread count
//!   and by the serial engine; of two cycles that share one (a query requesting two
//!   others in parallel, both leading back to it), which is reported may depend on the
//!   schedule.
//! - A panicking query poisons its entry: every waiter and later request gets
//!   [`QueryError::Panicked`] with the original message.
//! - If no worker of a pool can run anything while requests are blocked there, and no
//!   thread is inside `weft::blocking` or waiting on another pool (an exact condition,
//!   no timer), the blocked requests get [`QueryError::Deadlock`] with the wait graph.
//! - [`Input`]s are set from outside ([`Engine::set_input`]); reading one that was never
//!   set gets [`QueryError::InputNotSet`]. An engine made with
//!   [`Engine::incremental`] records what each query read, and after inputs change it
//!   re-executes only what depends on a change (red-green, early cutoff: see
//!   `revision.rs`), with the same values and reports as a fresh engine.

use std::fmt::Debug;
use std::hash::Hash;

mod cx;
mod deps;
mod engine;
mod error;
mod fetch;
mod graph;
mod job;
mod pages;
mod revision;
mod table;
mod tables;
mod unwind;

pub use cx::{Cx, QueryScope};
pub use engine::Engine;
pub use error::{Cycle, PanicPayload, QueryError, WaitEdge, WaitGraphReport};
pub use revision::Stats;

#[cfg(loom)]
pub(crate) use deps::DepArena;
pub(crate) use deps::DepBuf;
pub(crate) use job::{canonical_cmp, key_text, ErasedKey};
pub(crate) use revision::{check_deps, Dep, Event, Revision, Revisions, Verdict};
#[cfg(loom)]
pub(crate) use table::IdLanes;
pub(crate) use table::{state, Claim, Memo, MemoTable, Miss, Record, Slot, Stored};
pub(crate) use tables::{Greening, Refresher, TableMap};
pub(crate) use unwind::{finish_run, settle, unwind_cycle};

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
    /// whether another query is done at that moment depends on timing), also one made
    /// through an [`Engine::run`] of the same engine nested in `recover`; letting it
    /// propagate (with `cx.get`) stores that error for this participant. A `recover`
    /// that panics poisons this participant like a panicking `compute`. Either way
    /// every waiter is released: a recovery never leaves its entry in progress.
    fn recover(cx: &Cx<'_>, key: &Self::Key, cycle: &Cycle) -> Option<Self::Value> {
        let _ = (cx, key, cycle);
        None
    }

    /// Whether a re-executed value equals the old one, for an incremental engine's early
    /// cutoff: if so the memo keeps the old value and its old "changed" revision, and
    /// the queries that read it need not run again. The default says "not the same"
    /// (every re-execution counts as a change); a value with `PartialEq` wants
    /// `old == new`. Batch engines never call it.
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        let _ = (old, new);
        false
    }

    /// For keys that are dense small integers (ids handed out 0, 1, 2, ..., like a
    /// compiler's item ids): `Some(f)`, where `f` gives each key its index. The memo is
    /// then an array indexed by it instead of a hash table (rustc's `VecCache`, salsa's
    /// id tables): a hit is an index and a load, a new key one CAS, nothing is hashed
    /// (about three times cheaper than a hashed key's hit, in `benches/query.rs`).
    /// Memory grows with the largest index requested (a slot per index below it, in
    /// pages allocated on first use), so keep the indices dense.
    ///
    /// `f` must give different keys different indices, for as long as the engine lives
    /// (an incremental engine keeps its memos across runs, so a key type whose ids are
    /// reassigned after an edit does not qualify): a request whose key differs from the
    /// key already stored at its index panics, naming both.
    ///
    /// ```
    /// use weft::query::{Cx, Engine, Query};
    ///
    /// #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
    /// struct ItemId(u32);
    ///
    /// struct Depth;
    /// impl Query for Depth {
    ///     type Key = ItemId;
    ///     type Value = u32;
    ///     const NAME: &'static str = "depth";
    ///     const KEY_INDEX: Option<fn(&ItemId) -> u32> = Some(|item| item.0);
    ///     fn compute(cx: &Cx<'_>, item: &ItemId) -> u32 {
    ///         if item.0 == 0 { 0 } else { 1 + cx.get::<Depth>(&ItemId(item.0 / 2)) }
    ///     }
    /// }
    ///
    /// assert_eq!(Engine::new().run(|cx| cx.get::<Depth>(&ItemId(1000))), Ok(10));
    /// ```
    const KEY_INDEX: Option<fn(&Self::Key) -> u32> = None;

    /// True for the queries [`Input`] defines (set from outside, never computed).
    #[doc(hidden)]
    const IS_INPUT: bool = false;
}

/// An input: a value set from outside with [`Engine::set_input`], read like any query
/// (`cx.get::<I>(&key)`), never computed. Reading a key that was never set gets
/// [`QueryError::InputNotSet`]. Every `Input` is a [`Query`] (whose `compute` reports
/// that error), so queries read inputs and queries alike.
///
/// ```
/// use weft::query::{Cx, Engine, Input, Query};
///
/// struct Source;
/// impl Input for Source {
///     type Key = &'static str;
///     type Value = String;
///     const NAME: &'static str = "source";
/// }
///
/// struct Length;
/// impl Query for Length {
///     type Key = &'static str;
///     type Value = usize;
///     const NAME: &'static str = "length";
///     fn compute(cx: &Cx<'_>, file: &&'static str) -> usize {
///         cx.get_ref::<Source>(file).len()
///     }
///     fn same(old: &usize, new: &usize) -> bool {
///         old == new
///     }
/// }
///
/// let mut engine = Engine::new().incremental();
/// engine.set_input::<Source>("main.wd", "fn main() {}".to_string());
/// assert_eq!(engine.run(|cx| cx.get::<Length>(&"main.wd")), Ok(12));
/// engine.set_input::<Source>("main.wd", "fn main() { }".to_string());
/// assert_eq!(engine.run(|cx| cx.get::<Length>(&"main.wd")), Ok(13));
/// assert_eq!(engine.stats().executed, 1, "only `length` ran again");
/// ```
pub trait Input: 'static {
    /// What the input is set for.
    type Key: Clone + Eq + Hash + Ord + Debug + Send + Sync;
    /// Its value.
    type Value: Clone + Send + Sync;
    /// The name used in reports, e.g. `source_text`.
    const NAME: &'static str;
    /// Dense keys: as [`Query::KEY_INDEX`].
    const KEY_INDEX: Option<fn(&Self::Key) -> u32> = None;
}

impl<I: Input> Query for I {
    type Key = I::Key;
    type Value = I::Value;
    const NAME: &'static str = I::NAME;
    const KEY_INDEX: Option<fn(&I::Key) -> u32> = I::KEY_INDEX;
    const IS_INPUT: bool = true;

    /// An input that was never set: the request gets [`QueryError::InputNotSet`].
    fn compute(_: &Cx<'_>, key: &I::Key) -> I::Value {
        unwind::propagate(QueryError::InputNotSet {
            input: I::NAME,
            key: key_text(key),
        })
    }
}
