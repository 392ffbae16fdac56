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
use std::mem::ManuallyDrop;

use super::deps::DepLog;
use super::error::Cycle;
use super::graph::WaitSlot;
use crate::pool::context::ContextNode;
use crate::pool::registry::Registry;
use crate::pool::{catch, drop_payload};
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Arc, UnsafeCell};

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
        key_text(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn cmp_same_type(&self, other: &dyn ErasedKey) -> Option<CmpOrdering> {
        other.as_any().downcast_ref::<K>().map(|o| self.cmp(o))
    }
}

/// A query in progress.
///
/// `repr(C)` with `ctx` first: a nested `Engine::run` finds its enclosing query job
/// from the context chain (see [`QueryJob::enclosing`]).
#[repr(C)]
pub(crate) struct QueryJob {
    pub(crate) ctx: ContextNode,
    /// The query that requested this one (it waits for us), or null for a root request.
    pub(crate) parent: *const QueryJob,
    pub(crate) name: &'static str,
    /// `type_name` of the query: breaks ties between query types sharing a `NAME`.
    pub(crate) type_name: &'static str,
    /// The pool whose worker claimed the query (its waiters on other pools wait on
    /// another pool: see `graph.rs`).
    pub(crate) registry: *const Registry,
    /// The key (the request's, which outlives the job).
    pub(crate) key: *const dyn ErasedKey,
    /// *graph*: who waits for this job, made on the first wait (most jobs never have
    /// one, so a claim neither builds nor drops these lists). Dropped by hand, like
    /// `deps` (see the `Drop` impl).
    graph: ManuallyDrop<UnsafeCell<Option<Box<JobWaits>>>>,
    /// Set (with `cycle`) when the job is found in a cycle; readable without the lock.
    in_cycle: AtomicBool,
    /// What the query read, in order (incremental engines only; see `revision.rs`).
    pub(crate) deps: ManuallyDrop<DepLog>,
}

impl Drop for QueryJob {
    /// Inline and nearly free for the common job (never waited on, few dependencies):
    /// the compiler's drop glue for the two fields was an out-of-line call on every
    /// claim.
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can reach the job any more.
        let waited = self.graph.with(|g| unsafe { (*g).is_some() });
        if waited || self.deps.holds_heap() {
            self.drop_fields();
        }
    }
}

// A running slot's state word is its owner job's address with a flag in bit 0, and
// addresses must exceed the final states (`table::state`).
const _: () = assert!(std::mem::align_of::<QueryJob>() >= 4);

/// Who waits for a job (*graph* fields, under the wait-graph mutex).
#[derive(Default)]
pub(crate) struct JobWaits {
    /// Jobs blocked on this job's entry.
    pub(crate) waited_by: Vec<*const QueryJob>,
    /// Waits to release when the entry completes.
    pub(crate) waiters: Vec<Arc<WaitSlot>>,
    /// The cycle this job was found in.
    pub(crate) cycle: Option<Cycle>,
}

// SAFETY: the raw pointers name jobs and keys that the wait-graph protocol keeps alive
// while they are reachable (a job is unlinked under the graph mutex before it is
// freed), and the *graph* fields are only touched under that mutex.
unsafe impl Send for QueryJob {}
// SAFETY: as above.
unsafe impl Sync for QueryJob {}

impl QueryJob {
    #[inline]
    pub(crate) fn new(
        ctx: ContextNode,
        parent: Option<&QueryJob>,
        (name, type_name): (&'static str, &'static str),
        key: &dyn ErasedKey,
        registry: &Registry,
    ) -> Self {
        // SAFETY (of the later dereferences): the key is the request's, which outlives
        // the job (it lives in the frame that claimed); the lifetime is erased here only.
        let key: *const (dyn ErasedKey + '_) = key;
        let key: *const dyn ErasedKey = unsafe { std::mem::transmute(key) };
        QueryJob {
            ctx,
            parent: parent.map_or(std::ptr::null(), |p| p as *const _),
            name,
            type_name,
            registry,
            key,
            graph: ManuallyDrop::new(UnsafeCell::new(None)),
            in_cycle: AtomicBool::new(false),
            deps: ManuallyDrop::new(DepLog::default()),
        }
    }

    /// The fields `Drop` skips when they own nothing.
    #[cold]
    fn drop_fields(&mut self) {
        // SAFETY: called once, from `drop`; neither field is used afterwards.
        unsafe {
            ManuallyDrop::drop(&mut self.graph);
            ManuallyDrop::drop(&mut self.deps);
        }
    }

    pub(crate) fn key(&self) -> &dyn ErasedKey {
        // SAFETY: the key outlives the job (see `new`).
        unsafe { &*self.key }
    }

    /// `(name, key text)` for reports.
    pub(crate) fn describe(&self) -> (&'static str, String) {
        (self.name, self.key().debug_text())
    }

    /// True once the job has been found in a cycle.
    #[inline]
    pub(crate) fn in_cycle(&self) -> bool {
        self.in_cycle.load(Ordering::Acquire)
    }

    /// Marks the job as a participant of `cycle`. Caller holds the graph mutex.
    pub(crate) fn mark_in_cycle(&self, cycle: &Cycle) {
        // SAFETY: the caller holds the graph mutex.
        unsafe { self.waits_mut().cycle = Some(cycle.clone()) };
        self.in_cycle.store(true, Ordering::Release);
    }

    /// The job's wait lists, if any wait ever touched it.
    ///
    /// # Safety
    /// The caller holds the engine's wait-graph mutex, and drops the reference before
    /// releasing it.
    pub(crate) unsafe fn waits(&self) -> Option<&JobWaits> {
        // SAFETY: forwarded: the graph mutex guards the field.
        self.graph.with(|g| unsafe { (*g).as_deref() })
    }

    /// The job's wait lists, made if needed.
    ///
    /// # Safety
    /// As for [`QueryJob::waits`].
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn waits_mut(&self) -> &mut JobWaits {
        // SAFETY: forwarded: the graph mutex guards the field, and the caller holds no
        // other reference into it.
        self.graph
            .with_mut(|g| unsafe { (*g).get_or_insert_with(Box::default).as_mut() })
    }

    /// Canonical order between participants (see [`canonical_cmp`]).
    pub(crate) fn canonical_cmp(&self, other: &QueryJob) -> CmpOrdering {
        canonical_cmp(
            (self.name, self.type_name, self.key()),
            (other.name, other.type_name, other.key()),
        )
    }

    /// The innermost job of the engine tagged `engine_tag` that the current code runs
    /// for (on its own stack or in a job it started), if any.
    pub(crate) fn enclosing<'a>(engine_tag: usize) -> Option<&'a QueryJob> {
        let node = crate::pool::context::innermost_tagged(engine_tag)?;
        // SAFETY: only query jobs tag their context node with an engine's address, and a
        // `QueryJob` is `repr(C)` with that node first, so the node's address is the
        // job's. The job outlives every context below it (context lifetime rule).
        Some(unsafe { &*(node as *const QueryJob) })
    }
}

/// Canonical order between cycle participants: query name, then the query's type name
/// (two types may share a `NAME`), then key (by `Ord` when both keys have the same
/// type, else by their text). Both engines rotate reports with it. A key's `Ord` that
/// panics counts as equal (the text then decides).
pub(crate) fn canonical_cmp(
    (a_name, a_type, a_key): (&str, &str, &dyn ErasedKey),
    (b_name, b_type, b_key): (&str, &str, &dyn ErasedKey),
) -> CmpOrdering {
    a_name.cmp(b_name).then(a_type.cmp(b_type)).then_with(|| {
        let by_ord = match catch(|| a_key.cmp_same_type(b_key)) {
            Ok(order) => order,
            Err(payload) => {
                drop_payload(payload);
                None
            }
        };
        by_ord
            .filter(|o| o.is_ne())
            .unwrap_or_else(|| a_key.debug_text().cmp(&b_key.debug_text()))
    })
}

/// A key's `Debug` text for reports and traces; a `Debug` that panics gives a
/// placeholder rather than unwinding out of the engine's bookkeeping.
pub(crate) fn key_text<K: Debug + ?Sized>(key: &K) -> String {
    match catch(|| format!("{key:?}")) {
        Ok(text) => text,
        Err(payload) => {
            drop_payload(payload);
            "<Debug panicked>".to_string()
        }
    }
}
