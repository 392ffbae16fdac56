//! The record of a query while it computes: a node of the wait graph.
//!
//! A [`QueryJob`] lives on the stack of the `get` frame that claimed the entry, from the
//! claim until the entry is complete. It embeds the pool [`ContextNode`] that jobs
//! started by the query carry, and points to the query that requested it (its
//! `parent`, which waits for it). Fields marked *graph* are read and written only with
//! the engine's wait-graph mutex held.

use std::any::Any;
use std::cmp::Ordering as CmpOrdering;
use std::fmt::Debug;

use super::error::Cycle;
use crate::pool::context::ContextNode;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::UnsafeCell;

/// A key with its type erased: enough to print it and to order it against keys of the
/// same query.
pub(crate) trait ErasedKey: Send + Sync {
    fn debug_text(&self) -> String;
    fn as_any(&self) -> &dyn Any;
    /// `Ord` comparison with a key of the same type; `None` for another type.
    fn cmp_same_type(&self, other: &dyn ErasedKey) -> Option<CmpOrdering>;
}

impl<K: Debug + Ord + Send + Sync + 'static> ErasedKey for K {
    fn debug_text(&self) -> String {
        format!("{self:?}")
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn cmp_same_type(&self, other: &dyn ErasedKey) -> Option<CmpOrdering> {
        other.as_any().downcast_ref::<K>().map(|o| self.cmp(o))
    }
}

/// A query in progress.
pub(crate) struct QueryJob {
    pub(crate) ctx: ContextNode,
    /// The query that requested this one (it waits for us), or null for a root request.
    pub(crate) parent: *const QueryJob,
    pub(crate) name: &'static str,
    /// The key, inside the memo entry (which lives as long as the engine).
    pub(crate) key: *const dyn ErasedKey,
    /// *graph*: jobs blocked on this job's entry.
    pub(crate) waited_by: UnsafeCell<Vec<*const QueryJob>>,
    /// *graph*: the cycle this job was found in.
    pub(crate) cycle: UnsafeCell<Option<Cycle>>,
    /// Set (with `cycle`) when the job is found in a cycle; readable without the lock.
    in_cycle: AtomicBool,
}

// SAFETY: the raw pointers name jobs and keys that the wait-graph protocol keeps alive
// while they are reachable (a job is unlinked under the graph mutex before it is
// freed), and the *graph* fields are only touched under that mutex.
unsafe impl Send for QueryJob {}
// SAFETY: as above.
unsafe impl Sync for QueryJob {}

impl QueryJob {
    pub(crate) fn new(
        ctx: ContextNode,
        parent: Option<&QueryJob>,
        name: &'static str,
        key: &dyn ErasedKey,
    ) -> Self {
        // SAFETY (of the later dereferences): keys live in memo entries, which live as
        // long as the engine; the lifetime is erased here only.
        let key: *const (dyn ErasedKey + '_) = key;
        let key: *const dyn ErasedKey = unsafe { std::mem::transmute(key) };
        QueryJob {
            ctx,
            parent: parent.map_or(std::ptr::null(), |p| p as *const _),
            name,
            key,
            waited_by: UnsafeCell::new(Vec::new()),
            cycle: UnsafeCell::new(None),
            in_cycle: AtomicBool::new(false),
        }
    }

    pub(crate) fn key(&self) -> &dyn ErasedKey {
        // SAFETY: the key lives in a memo entry, which outlives every job (see `new`).
        unsafe { &*self.key }
    }

    /// `(name, key text)` for reports.
    pub(crate) fn describe(&self) -> (&'static str, String) {
        (self.name, self.key().debug_text())
    }

    /// True once the job has been found in a cycle.
    pub(crate) fn in_cycle(&self) -> bool {
        self.in_cycle.load(Ordering::Acquire)
    }

    /// Marks the job as a participant of `cycle`. Caller holds the graph mutex.
    pub(crate) fn mark_in_cycle(&self, cycle: &Cycle) {
        // SAFETY: the caller holds the graph mutex, which guards `cycle`.
        self.cycle.with_mut(|c| unsafe { *c = Some(cycle.clone()) });
        self.in_cycle.store(true, Ordering::Release);
    }

    /// Canonical order between participants (see [`canonical_cmp`]).
    pub(crate) fn canonical_cmp(&self, other: &QueryJob) -> CmpOrdering {
        canonical_cmp((self.name, self.key()), (other.name, other.key()))
    }
}

/// Canonical order between cycle participants: query name, then key (by `Ord` when both
/// keys have the same type, else by their text). Both engines rotate reports with it.
pub(crate) fn canonical_cmp(
    (a_name, a_key): (&str, &dyn ErasedKey),
    (b_name, b_key): (&str, &dyn ErasedKey),
) -> CmpOrdering {
    a_name.cmp(b_name).then_with(|| {
        a_key
            .cmp_same_type(b_key)
            .unwrap_or_else(|| a_key.debug_text().cmp(&b_key.debug_text()))
    })
}
