//! A worker's list of private `join` halves, from which an idle worker can snatch the
//! oldest without the owner's help.
//!
//! A `join` keeps its second half private when nobody is hungry (see `join.rs`): the
//! owner links it into this list and unlinks it after the first half, with plain stores
//! and no fence, and runs it inline. Publishing one half per worker, and pushing the
//! outermost few, lets idle workers reach most halves (see `HiddenJob`), but a first
//! half that blocks in user code on a half its worker keeps deeper in the list would
//! wait forever: its owner never calls into weft again to expose it.
//!
//! So an idle worker about to sleep walks the lists of the others and takes the oldest
//! half still private. It is a Dekker handshake between the owner's unlink and the
//! thief's walk, made cheap for the owner by an asymmetric fence:
//!
//! - Owner, unlinking: store the new list head, a compiler-only fence
//!   ([`asymmetric::light_fence`]), load the list's word. Zero (the common case): no thief
//!   has the list or snatched from it; run the half inline. Otherwise wait until no
//!   thief walks the list ([`PrivateHalves::settle`]) and look at the node's `share`.
//! - Thief: set [`INSPECTING`] in the word (one thief at a time), then the heavy fence
//!   ([`asymmetric::heavy_fence`], Linux's `membarrier`: it orders the owner's earlier
//!   stores before its later loads as if the owner had fenced), then read the head and
//!   walk down to the first `SNATCHED` node (none below it is private). It marks the
//!   oldest `PRIVATE` node `SNATCHED` (the oldest is the largest piece of work), writes
//!   its latch, and clears [`INSPECTING`] while adding one to the snatched count, in
//!   one release. A walk costs the number of nodes above the last snatched one: a thief
//!   emptying a list of `n` private halves under a blocked owner visits ~n²/2 nodes.
//!
//! Either the owner's load sees the thief's flag or the thief sees the owner's unlink:
//! a node is never run by both. Nodes stay in scope while a thief walks: every unlink
//! that the thief may not have seen finds the word set and waits for the walk to end.
//! A snatched node stays in the list until its owner unlinks it; the count in the word
//! makes the owner's unlinks take the slow path until it has found every one.
//!
//! Where the OS has no such fence (not Linux, or a kernel or sandbox without
//! `membarrier`), nothing is ever snatched and the list is the owner's alone, as it
//! was before.

use std::ptr;

use super::half::{share, HiddenJob};
use super::job::JobRef;
use super::registry::Registry;
use crate::sync::asymmetric;
use crate::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// The list's word: a thief walks the list.
const INSPECTING: usize = 1;
/// The list's word: one snatched node whose owner has not found out yet.
const SNATCHED_ONE: usize = 2;

/// The owner's half of the handshake: a compiler fence (under loom a `SeqCst` one,
/// and none while models leave snatching off, to keep their interleavings few).
#[inline(always)]
fn fence_against_thieves() {
    // The mutant (loom builds only) skips it.
    if crate::sync::snatching() && !crate::sync::mutant("snatch_unfenced") {
        asymmetric::light_fence();
    }
}

/// One worker's private `join` halves, newest first (linked through `HiddenJob::below`).
pub(crate) struct PrivateHalves {
    newest: AtomicPtr<HiddenJob>,
    /// [`INSPECTING`], plus [`SNATCHED_ONE`] per snatched node still in the list.
    word: AtomicUsize,
}

impl PrivateHalves {
    pub(crate) fn new() -> Self {
        PrivateHalves {
            newest: AtomicPtr::new(ptr::null_mut()),
            word: AtomicUsize::new(0),
        }
    }

    /// The newest private half, or null (the owner's view; racy for anyone else).
    #[inline]
    pub(crate) fn newest(&self) -> *const HiddenJob {
        self.newest.load(Ordering::Relaxed)
    }

    /// Owner: makes `node` the newest private half, ordered before the caller's next
    /// loads against a thief's heavy fence (see `WorkerThread::hide`).
    #[inline]
    pub(crate) fn push(&self, node: &HiddenJob) {
        node.set_below(self.newest.load(Ordering::Relaxed));
        // Release: a thief that reads this head reads the node's fields too.
        self.newest.store(
            node as *const HiddenJob as *mut HiddenJob,
            Ordering::Release,
        );
        fence_against_thieves();
    }

    /// Owner: unlinks `node`, the newest private half. True if no thief can have it,
    /// nor have read it (the caller may run it and end its storage); otherwise call
    /// [`PrivateHalves::settle_one`].
    #[inline]
    pub(crate) fn pop(&self, node: &HiddenJob) -> bool {
        self.newest
            .store(node.below() as *mut HiddenJob, Ordering::Release);
        self.quiet()
    }

    /// Owner: unlinks every private half and returns the newest (or null), and whether
    /// no thief can have any of them (otherwise call [`PrivateHalves::settle`], then
    /// [`PrivateHalves::found_snatched`] on each).
    pub(crate) fn pop_all(&self) -> (*const HiddenJob, bool) {
        let newest = self.newest.load(Ordering::Relaxed);
        if newest.is_null() {
            return (newest, true);
        }
        self.newest.store(ptr::null_mut(), Ordering::Release);
        (newest, self.quiet())
    }

    /// Owner, right after an unlink: true if no thief walks the list or snatched from
    /// it. The light fence orders the unlink before this load against a thief's heavy
    /// fence (see the module docs).
    #[inline]
    fn quiet(&self) -> bool {
        fence_against_thieves();
        self.word.load(Ordering::Relaxed) == 0 || crate::sync::mutant("unlink_ignores_thieves")
    }

    /// Owner, after a [`PrivateHalves::pop`] that was not quiet: waits until no thief
    /// walks the list, and returns true if one snatched `node` (the owner then waits
    /// for its latch like a stolen job's).
    #[cold]
    pub(crate) fn settle_one(&self, node: &HiddenJob) -> bool {
        self.settle();
        self.found_snatched(node)
    }

    /// Owner: waits until no thief walks the list. The walk runs no user code and
    /// touches a handful of nodes, so this is short.
    #[cold]
    pub(crate) fn settle(&self) {
        let mut spins = 0u32;
        // Acquire: pairs with the thief's release, so `found_snatched` sees its marks.
        while self.word.load(Ordering::Acquire) & INSPECTING != 0 {
            spins += 1;
            if spins % 64 == 0 {
                crate::sync::thread::yield_now();
            } else {
                crate::sync::thread::spin_loop();
            }
        }
    }

    /// Owner, after [`PrivateHalves::settle`], for a node it unlinked: true if a thief
    /// snatched it (counted off the word).
    pub(crate) fn found_snatched(&self, node: &HiddenJob) -> bool {
        if node.share().load(Ordering::Relaxed) != share::SNATCHED {
            return false;
        }
        self.word.fetch_sub(SNATCHED_ONE, Ordering::Relaxed);
        node.mark_snatched();
        true
    }

    /// Thief: takes the oldest half that worker `owner` of `registry` keeps private and
    /// has not offered in its slot, if any, for the caller to run. Costs a system call
    /// (the heavy fence): call it only when idle.
    pub(crate) fn snatch(&self, registry: &Registry, owner: usize) -> Option<JobRef> {
        if self.newest.load(Ordering::Relaxed).is_null() || !asymmetric::available() {
            return None;
        }
        let word = self.word.load(Ordering::Relaxed);
        if word & INSPECTING != 0
            || self
                .word
                .compare_exchange(
                    word,
                    word | INSPECTING,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            // Another thief walks the list.
            return None;
        }
        if !asymmetric::heavy_fence() {
            self.word.fetch_sub(INSPECTING, Ordering::Release);
            return None;
        }
        let mut node = self.newest.load(Ordering::Acquire) as *const HiddenJob;
        let mut oldest: *const HiddenJob = ptr::null();
        // SAFETY: every node in the list stays in scope until INSPECTING is clear: its
        // owner unlinks it before its frame ends, and an unlink this walk may miss sees
        // the flag and settles (see the module docs). The nodes' fields were written
        // before the release that linked them.
        while let Some(n) = unsafe { node.as_ref() } {
            match n.share().load(Ordering::Relaxed) {
                share::PRIVATE => oldest = n,
                // Each snatch takes the oldest private node of the whole list, and
                // nodes only join at the top: none below this one is private.
                share::SNATCHED => break,
                _ => {}
            }
            node = n.below();
        }
        if oldest.is_null() {
            self.word.fetch_sub(INSPECTING, Ordering::Release);
            return None;
        }
        // SAFETY: as above, the node is in scope; we hold the list.
        unsafe { (*oldest).share().store(share::SNATCHED, Ordering::Relaxed) };
        // SAFETY: marked SNATCHED while we hold the list: the owner runs it only if it
        // finds it not snatched after settling, which it does after our release below.
        let job = unsafe { HiddenJob::snatched_job(oldest, registry, owner) };
        // Clears INSPECTING and counts the snatch, publishing both marks.
        self.word
            .fetch_add(SNATCHED_ONE - INSPECTING, Ordering::Release);
        Some(job)
    }
}
