//! `par_for_each` and `par_map` over slices, built on `join`.
//!
//! The slice is halved recursively with `join` down to pieces of about
//! `len / (8 * threads)` items, enough pieces for stealing to even out uneven items.
//!
//! Panics follow `join`'s rule at every level: every item runs, and the panic of the
//! leftmost panicking item is re-raised once all have finished, whatever the thread
//! count or schedule (the query engine relies on this to store the same error as the
//! serial engine).

use super::join::join;
use super::unwind::{catch, drop_payload};

/// Size of the pieces a slice of `len` items is cut into on a pool of `threads`.
pub(crate) fn grain(len: usize, threads: usize) -> usize {
    if threads <= 1 {
        return len.max(1);
    }
    (len / (threads * 8)).max(1)
}

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
    let grain = grain(items.len(), threads());
    for_each_in(items, grain, &f);
}

fn for_each_in<T: Sync, F: Fn(&T) + Sync>(items: &[T], grain: usize, f: &F) {
    if items.len() <= grain {
        each_item(items.iter(), f);
        return;
    }
    let (left, right) = items.split_at(items.len() / 2);
    join(
        || for_each_in(left, grain, f),
        || for_each_in(right, grain, f),
    );
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
    let grain = grain(items.len(), threads());
    let mut out: Vec<Option<U>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    map_into(items, &mut out, grain, &f);
    out.into_iter()
        .map(|slot| slot.expect("every slot is written before join returns"))
        .collect()
}

fn map_into<T: Sync, U: Send, F: Fn(&T) -> U + Sync>(
    items: &[T],
    out: &mut [Option<U>],
    grain: usize,
    f: &F,
) {
    if items.len() <= grain {
        each_item(items.iter().zip(out), |(item, slot)| *slot = Some(f(item)));
        return;
    }
    let mid = items.len() / 2;
    let (items_l, items_r) = items.split_at(mid);
    let (out_l, out_r) = out.split_at_mut(mid);
    join(
        || map_into(items_l, out_l, grain, f),
        || map_into(items_r, out_r, grain, f),
    );
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
