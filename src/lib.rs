//! weft: a work-stealing thread pool and a demand-driven query engine for compilers.
//!
//! The pool has rayon's names ([`ThreadPoolBuilder`], [`ThreadPool::install`], [`join`],
//! [`scope`], [`spawn`]) plus [`par_for_each`] and [`par_map`] over slices. What it adds
//! for compilers: a wait that cannot finish at once suspends its stack (a pinned fiber)
//! instead of holding a thread or running unrelated work on top of the waiting frame,
//! so waiting never creates a dependency a query engine cannot see; every job carries
//! the context of the code that created it (see [`context`]); and the [`query`] engine
//! detects cycles as they close and deadlocks exactly.
//!
//! ```
//! let pool = weft::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
//! let total: u64 = pool.install(|| {
//!     let parts = weft::par_map(&[1u64, 2, 3, 4], |x| x * 10);
//!     let (a, b) = weft::join(|| parts[..2].iter().sum::<u64>(), || parts[2..].iter().sum::<u64>());
//!     a + b
//! });
//! assert_eq!(total, 100);
//! ```

#![warn(missing_docs)]

mod pool;
pub mod query;
mod serial;
mod sync;
pub mod trace;

/// Hooks for the `loom-tests` models (loom builds only).
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::pool::ModelJobserver;
    pub use crate::sync::deque::force_retry as force_steal_retry;
    pub use crate::sync::fiber::suspensions as fiber_suspensions;
    pub use crate::sync::inject_fault;
    pub use crate::sync::{PUBLISH_HIDDEN_HALVES, PUSH_EAGER_HALVES, SNATCH_PRIVATE_HALVES};

    /// A memo table's slot-id lanes (`query::table::IdLanes`), for the id model.
    pub struct SlotIds(crate::query::IdLanes);

    impl SlotIds {
        #[allow(clippy::new_without_default)]
        pub fn new() -> Self {
            SlotIds(crate::query::IdLanes::new())
        }

        /// A fresh id for a claim in `lane`.
        pub fn next(&self, lane: usize) -> u32 {
            self.0.next(lane)
        }
    }

    /// A memo table's dependency arena (`query::deps::DepArena`), for the range model.
    pub struct DepRanges(crate::query::DepArena);

    impl DepRanges {
        #[allow(clippy::new_without_default)]
        pub fn new() -> Self {
            DepRanges(crate::query::DepArena::new())
        }

        /// The first edge of `len` fresh ones.
        pub fn allocate(&self, len: u32) -> u32 {
            self.0.allocate(len)
        }
    }
}

pub use pool::context;
pub use pool::{
    blocking, broadcast, current_num_threads, current_thread_has_pending_tasks,
    current_thread_index, in_place_scope, in_place_scope_fifo, join, join_context, max_num_threads,
    par_for_each, par_map, scope, scope_fifo, spawn, spawn_broadcast, spawn_fifo, yield_local,
    yield_now, BroadcastContext, FnContext, PoolStats, Scope, ScopeFifo, ThreadBuilder, ThreadPool,
    ThreadPoolBuildError, ThreadPoolBuilder, Yield, DEFAULT_MAX_SPARES, DEFAULT_STACK_SIZE,
    MAX_NUM_THREADS,
};
#[allow(deprecated)]
pub use pool::{initialize, Configuration};
