//! `par_for_each` and `par_map` over slices: items claimed in order from a shared cursor.
//!
//! A call starts a few *lanes* (a small `join` tree, so idle workers steal them); each
//! lane repeatedly claims the next block of items from one atomic cursor and runs them.
//! Items therefore start in input order whatever the thread count, and a lane that
//! waits (its item waits for a query another item computes) leaves the rest of the
//! items to the other lanes. Compilers' items typically depend on earlier ones: a
//! split into halves would send the second worker to the middle of the slice, where
//! everything it needs is still to be computed by the first; claiming in order keeps
//! the workers on neighbouring items instead.
//!
//! Blocks are about `len / (32 * threads)` items (at least one), so cheap items pay one
//! atomic operation per block, not per item. Lanes number twice the threads (capped by
//! the blocks), so a suspended lane does not leave a worker without one.
//!
//! Panics follow `join`'s rule: every item runs, and the panic of the leftmost
//! panicking item is re-raised once all have finished, whatever the thread count or
//! schedule (the query engine relies on this to store the same error as the serial
//! engine).

use super::join::join;
use super::unwind::{catch, drop_payload, FirstPanic};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::UnsafeCell;

/// The number of threads of the current pool (see [`crate::current_num_threads`]).
fn threads() -> usize {
    crate::current_num_threads()
}

/// Calls `f` on every item of `items`, in parallel on the current pool.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// let sum = AtomicU64::new(0);
/// weft::par_for_each(&[1u64, 2, 3, 4], |x| { sum.fetch_add(*x, Ordering::Relaxed); });
/// assert_eq!(sum.into_inner(), 10);
/// ```
pub fn par_for_each<T, F>(items: &[T], f: F)
where
    T: Sync,
    F: Fn(&T) + Sync,
{
    run_items(items.len(), &|i| f(&items[i]));
}

/// Maps `f` over `items` in parallel on the current pool; results are in input order.
///
/// ```
/// let squares = weft::par_map(&[1, 2, 3, 4], |x| x * x);
/// assert_eq!(squares, vec![1, 4, 9, 16]);
/// ```
pub fn par_map<T, U, F>(items: &[T], f: F) -> Vec<U>
where
    T: Sync,
    U: Send,
    F: Fn(&T) -> U + Sync,
{
    let out = Slots::new(items.len());
    run_items(items.len(), &|i| {
        let value = f(&items[i]);
        // SAFETY: the cursor hands out each index once, so no other lane writes slot `i`,
        // and nobody reads the slots before `run_items` returns.
        unsafe { out.put(i, value) };
    });
    out.into_values()
}

/// Runs `f(i)` for every `i` in `0..len` over lanes of the current pool (module docs).
fn run_items(len: usize, f: &(dyn Fn(usize) + Sync)) {
    let threads = threads();
    if len <= 1 || threads <= 1 {
        each_item(0..len, f);
        return;
    }
    let block = (len / (threads * 256)).max(1);
    let cursor = AtomicUsize::new(0);
    let first_panic = FirstPanic::new();
    let lane = || loop {
        // The other lanes may be `join` halves this worker kept private: let a hungry
        // worker have them (one relaxed load when nobody is).
        super::expose_if_hungry();
        let start = cursor.fetch_add(block, Ordering::Relaxed);
        if start >= len {
            return;
        }
        for i in start..(start + block).min(len) {
            if let Err(payload) = catch(|| f(i)) {
                first_panic.offer(i, payload);
            }
        }
    };
    spread((threads * 2).min(len.div_ceil(block)), &lane);
    if let Some(payload) = first_panic.take() {
        std::panic::resume_unwind(payload);
    }
}

/// Runs `lanes` copies of `lane`, potentially in parallel.
fn spread(lanes: usize, lane: &(dyn Fn() + Sync)) {
    if lanes <= 1 {
        lane();
        return;
    }
    let half = lanes / 2;
    join(|| spread(lanes - half, lane), || spread(half, lane));
}

/// Calls `f` on every item even if some panic; re-raises the first panic afterwards.
pub(crate) fn each_item<I: Iterator>(items: I, mut f: impl FnMut(I::Item)) {
    let mut first_panic = None;
    for item in items {
        if let Err(payload) = catch(|| f(item)) {
            match first_panic {
                None => first_panic = Some(payload),
                Some(_) => drop_payload(payload),
            }
        }
    }
    if let Some(payload) = first_panic {
        std::panic::resume_unwind(payload);
    }
}

/// `par_map`'s output: one slot per item, each written once by the lane that claimed it.
pub(crate) struct Slots<U> {
    slots: Vec<UnsafeCell<Option<U>>>,
}

// SAFETY: lanes on different threads write disjoint slots (the cursor hands each index
// out once), and the values are `Send`; the slots are read only after every lane ended.
unsafe impl<U: Send> Sync for Slots<U> {}

impl<U> Slots<U> {
    pub(crate) fn new(len: usize) -> Self {
        Slots {
            slots: (0..len).map(|_| UnsafeCell::new(None)).collect(),
        }
    }

    /// # Safety
    /// No other thread accesses slot `i` meanwhile.
    pub(crate) unsafe fn put(&self, i: usize, value: U) {
        // SAFETY: forwarded from the caller.
        self.slots[i].with_mut(|slot| unsafe { *slot = Some(value) });
    }

    pub(crate) fn into_values(self) -> Vec<U> {
        self.slots
            .into_iter()
            .map(|slot| {
                slot.into_inner()
                    .expect("every slot is written before the lanes end")
            })
            .collect()
    }
}
