//! What each memo of an incremental engine depends on: recorded while a query computes
//! ([`DepLog`], [`DepBuf`]), then stored with the memo ([`DepArena`], [`SlotMeta`]).
//!
//! A dependency is 8 bytes ([`Dep`]: a table index and a dense slot id). The lists of
//! one memo table live packed in one append-only arena of never-moving pages, and a
//! slot keeps only where its list starts and its length (8 bytes), so a stored list
//! costs its edges and nothing per allocation: no allocator header, no rounding, no
//! `malloc`/`free` per query. A re-executed query whose new list is no longer rewrites it
//! in place (the common case: the same reads again; a shorter list's tail is dead); a
//! longer one moves to the arena's end and its old edges are dead, which
//! [`DepArena::compact`] reclaims between runs once they outweigh the live lists.
//!
//! While a query computes, its reads go to a [`DepBuf`] that holds the first
//! [`INLINE_DEPS`] in place (on the claiming frame's stack) and spills to the heap
//! only beyond that.

use std::mem::MaybeUninit;

use super::pages::{locate, Pages};
use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::Mutex;

/// One dependency: the memo table (its index in the engine's `TableMap`) and the
/// slot's dense id in it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Dep {
    pub(crate) table: u32,
    pub(crate) id: u32,
}

/// Dependencies a [`DepBuf`] holds without allocating.
pub(crate) const INLINE_DEPS: usize = 8;

/// A dependency list being recorded, in order, without repeating the last entry.
pub(crate) struct DepBuf {
    /// Entries used (initialised) in `inline` (0 once the list spilled).
    len: u32,
    /// Left uninitialised until used: a batch engine's query jobs carry an empty one.
    inline: [MaybeUninit<Dep>; INLINE_DEPS],
    /// The whole list once it outgrew `inline`.
    spilled: Vec<Dep>,
}

impl Default for DepBuf {
    fn default() -> Self {
        DepBuf {
            len: 0,
            inline: [const { MaybeUninit::uninit() }; INLINE_DEPS],
            spilled: Vec::new(),
        }
    }
}

impl DepBuf {
    /// Appends `dep` unless it repeats the last entry.
    #[inline]
    pub(crate) fn push(&mut self, dep: Dep) {
        if self.as_slice().last() == Some(&dep) {
            return;
        }
        let len = self.len as usize;
        if self.spilled.is_empty() && len < INLINE_DEPS {
            self.inline[len].write(dep);
            self.len += 1;
        } else {
            self.spill_push(dep);
        }
    }

    #[cold]
    fn spill_push(&mut self, dep: Dep) {
        if self.spilled.is_empty() {
            self.spilled.reserve(4 * INLINE_DEPS);
            let inline = self.inline_slice().to_vec();
            self.spilled.extend_from_slice(&inline);
            self.len = 0;
        }
        self.spilled.push(dep);
    }

    /// The list so far.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[Dep] {
        if self.spilled.is_empty() {
            self.inline_slice()
        } else {
            &self.spilled
        }
    }

    #[inline]
    fn inline_slice(&self) -> &[Dep] {
        // SAFETY: the first `len` entries were written by `push` (`len` never exceeds
        // `INLINE_DEPS`), and `MaybeUninit<Dep>` has `Dep`'s layout.
        unsafe { std::slice::from_raw_parts(self.inline.as_ptr() as *const Dep, self.len as usize) }
    }

    /// Empties the list (keeping a spilled allocation for reuse).
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.spilled.clear();
    }
}

/// What a query in progress read, in order (the parallel engine's recorder: parallel
/// work of one query records into it from several threads; each thread's requests stay
/// in their program order, which is all red-green needs).
pub(crate) struct DepLog {
    deps: Mutex<DepBuf>,
}

impl Default for DepLog {
    fn default() -> Self {
        DepLog {
            deps: Mutex::new(DepBuf::default()),
        }
    }
}

impl DepLog {
    /// Records `dep` (a repeat of the last one is dropped). Kept out of line: the hit
    /// path of every request calls it in incremental engines only.
    #[inline(never)]
    pub(crate) fn record(&self, dep: Dep) {
        self.deps.lock().push(dep);
    }

    /// True if the log holds heap memory (its list outgrew the inline entries).
    pub(crate) fn holds_heap(&mut self) -> bool {
        // SAFETY: `&mut self` is exclusive access.
        unsafe { self.deps.with_exclusive(|buf| buf.spilled.capacity() != 0) }
    }

    /// The recorded list, leaving the log empty.
    pub(crate) fn take(&self) -> DepBuf {
        std::mem::take(&mut *self.deps.lock())
    }
}

/// One stored edge, a [`Dep`] packed as `table << 32 | id`. Edges are atomics so that a
/// reader that has not claimed the slot may look at its list (see `SlotMeta::peek`).
type Edge = AtomicU64;

fn pack(dep: Dep) -> u64 {
    u64::from(dep.table) << 32 | u64::from(dep.id)
}

fn unpack(edge: u64) -> Dep {
    Dep {
        table: (edge >> 32) as u32,
        id: edge as u32,
    }
}

/// The stored dependency lists of one memo table (see the module docs).
pub(crate) struct DepArena {
    edges: Pages<Edge>,
    /// The first edge no list has taken.
    end: AtomicU32,
    /// Edges below `end` that no slot's list covers: lists that moved or shrank, and
    /// page tails skipped so that a list stays within one page.
    dead: AtomicU64,
}

/// Where a slot's list lives in its table's [`DepArena`]. All-zero is the empty list.
pub(crate) struct SlotMeta {
    /// `start | len << 32`: the list is edges `start .. start + len`, which the slot
    /// owns. Written only by the slot's current owner (the claim's CAS and the final
    /// store order the owners), with release ordering after the edges, so a reader
    /// that loads it with acquire ordering sees edges at least that new.
    range: AtomicU64,
}

impl SlotMeta {
    pub(crate) fn empty() -> Self {
        SlotMeta {
            range: AtomicU64::new(0),
        }
    }

    /// The dependencies of the memo's last execution.
    ///
    /// # Safety
    /// The caller owns the slot (its state word names the caller), or has `&mut`
    /// access to the table; `arena` is the table's.
    pub(crate) unsafe fn deps<'a>(&self, arena: &'a DepArena) -> Deps<'a> {
        let range = self.range.load(Ordering::Relaxed);
        arena.list(range as u32, (range >> 32) as u32)
    }

    /// The list as a reader that does not own the slot sees it: the one published by
    /// the owner whose final state the reader loaded (acquire) or any newer one, or a
    /// mix of that and one its next owner is writing in place. Every entry is some
    /// recorded dependency; a reader must validate what it concludes (see
    /// `MemoTable::try_green`).
    pub(crate) fn peek<'a>(&self, arena: &'a DepArena) -> Deps<'a> {
        let range = self.range.load(Ordering::Acquire);
        arena.list(range as u32, (range >> 32) as u32)
    }

    /// Stores `deps` as the slot's list, in place if it is no longer than the old one.
    ///
    /// # Safety
    /// As for [`SlotMeta::deps`].
    pub(crate) unsafe fn set_deps(&self, arena: &DepArena, deps: &[Dep]) {
        let range = self.range.load(Ordering::Relaxed);
        let (start, old_len) = (range as u32, (range >> 32) as u32);
        let len = u32::try_from(deps.len()).expect("weft: a query read over 4 billion times");
        let start = if len <= old_len {
            arena.died(old_len - len);
            start
        } else {
            arena.died(old_len);
            arena.allocate(len)
        };
        arena.write(start, deps);
        (self.range).store(u64::from(start) | u64::from(len) << 32, Ordering::Release);
    }
}

/// A stored list, read in order.
#[derive(Clone, Copy)]
pub(crate) struct Deps<'a> {
    /// The list's first edge (dangling when `len` is 0).
    first: *const Edge,
    len: u32,
    _arena: std::marker::PhantomData<&'a DepArena>,
}

impl<'a> Deps<'a> {
    /// The first `n` entries.
    pub(crate) fn prefix(self, n: usize) -> Deps<'a> {
        Deps {
            len: self.len.min(n as u32),
            ..self
        }
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = Dep> + 'a {
        // SAFETY: `first .. first + len` are edges of one arena page (lists never span
        // pages), which live as long as the arena.
        (0..self.len as usize)
            .map(move |i| unpack(unsafe { &*self.first.add(i) }.load(Ordering::Relaxed)))
    }
}

impl DepArena {
    pub(crate) fn new() -> Self {
        DepArena {
            // SAFETY: an all-zero `AtomicU64` is `AtomicU64::new(0)`, not zero-sized.
            edges: unsafe { Pages::new(|| AtomicU64::new(0)) },
            end: AtomicU32::new(0),
            dead: AtomicU64::new(0),
        }
    }

    fn died(&self, edges: u32) {
        if edges > 0 {
            self.dead.fetch_add(u64::from(edges), Ordering::Relaxed);
        }
    }

    /// Takes `len > 0` fresh edges within one page; returns the first one's index.
    pub(crate) fn allocate(&self, len: u32) -> u32 {
        let mut end = self.end.load(Ordering::Relaxed);
        loop {
            let start = fitting_start(end, len);
            let new_end = u32::try_from(start + u64::from(len))
                .ok()
                .filter(|&e| e < u32::MAX)
                .expect("weft: over 4 billion dependency edges in one query's memo table");
            if crate::sync::mutant("dep_bump_not_atomic") {
                // Deliberately broken (loom builds only): two lists can get one range.
                self.end.store(new_end, Ordering::Relaxed);
                return start as u32;
            }
            match (self.end).compare_exchange_weak(
                end,
                new_end,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.died((start - u64::from(end)) as u32);
                    return start as u32;
                }
                Err(now) => end = now,
            }
        }
    }

    /// Writes `deps` at `start`, edges the caller's slot owns (in one page).
    fn write(&self, start: u32, deps: &[Dep]) {
        if deps.is_empty() {
            return;
        }
        let first = self.edges.ensure_ptr(start);
        for (i, &dep) in deps.iter().enumerate() {
            // SAFETY: the list lies in the page `first` points into.
            unsafe { &*first.add(i) }.store(pack(dep), Ordering::Relaxed);
        }
    }

    /// The list of `len` edges at `start` (empty if its page is not visible, which a
    /// range read by a non-owner cannot cause: the page was allocated before the range
    /// was published).
    fn list(&self, start: u32, len: u32) -> Deps<'_> {
        let first = match len {
            0 => std::ptr::null(),
            _ => self.edges.try_get_ptr(start),
        };
        Deps {
            first: if first.is_null() {
                std::ptr::NonNull::dangling().as_ptr()
            } else {
                first
            },
            len: if first.is_null() { 0 } else { len },
            _arena: std::marker::PhantomData,
        }
    }

    /// Edges taken from the arena that no list uses, and edges taken in all.
    pub(crate) fn usage(&self) -> (u64, u64) {
        (
            self.dead.load(Ordering::Relaxed),
            u64::from(self.end.load(Ordering::Relaxed)),
        )
    }

    /// Moves every slot's list (`metas`) into a fresh arena packed tight, if dead space
    /// outweighs the live lists: what a long editing session's moved lists leave behind.
    /// Exclusive access (between runs).
    pub(crate) fn compact(&mut self, metas: &mut Pages<SlotMeta>) {
        let (dead, end) = self.usage();
        if dead < 1 << 16 || dead * 2 < end {
            return;
        }
        let fresh = DepArena::new();
        let mut list = Vec::new();
        metas.for_each_mut(|meta| {
            let range = meta.range.load(Ordering::Relaxed);
            let len = (range >> 32) as u32;
            if len == 0 {
                return;
            }
            list.clear();
            list.extend(self.list(range as u32, len).iter());
            let start = fresh.allocate(len);
            fresh.write(start, &list);
            (meta.range).store(u64::from(start) | u64::from(len) << 32, Ordering::Relaxed);
        });
        *self = fresh;
    }
}

/// The first index at or after `end` where `len` edges fit in one page (pages double,
/// so a later one always fits).
fn fitting_start(end: u32, len: u32) -> u64 {
    let mut start = u64::from(end);
    loop {
        if start > u64::from(u32::MAX) {
            return start;
        }
        let (_, offset, page_len) = locate(start as u32);
        if (offset + len as usize) <= page_len {
            return start;
        }
        start += (page_len - offset) as u64;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn dep(id: u32) -> Dep {
        Dep { table: 1, id }
    }

    #[test]
    fn a_buffer_drops_repeats_and_spills_past_its_inline_room() {
        let mut buf = DepBuf::default();
        for id in [1, 1, 2, 2, 1] {
            buf.push(dep(id));
        }
        assert_eq!(buf.as_slice(), &[dep(1), dep(2), dep(1)]);
        for id in 10..30 {
            buf.push(dep(id));
        }
        assert_eq!(buf.as_slice().len(), 23);
        assert_eq!(buf.as_slice()[..3], [dep(1), dep(2), dep(1)]);
        assert_eq!(buf.as_slice()[22], dep(29));
        buf.clear();
        assert!(buf.as_slice().is_empty());
        buf.push(dep(7));
        assert_eq!(buf.as_slice(), &[dep(7)]);
    }

    #[test]
    fn lists_are_rewritten_in_place_move_when_longer_and_stay_in_one_page() {
        let arena = DepArena::new();
        // SAFETY: an all-zero meta is the empty list.
        let metas = unsafe { Pages::new(SlotMeta::empty) };
        let a = metas.ensure(0);
        let b = metas.ensure(1);
        let three: Vec<Dep> = (0..3).map(dep).collect();
        let long: Vec<Dep> = (0..100).map(dep).collect();
        // SAFETY: single-threaded test: we own every slot.
        unsafe {
            a.set_deps(&arena, &three);
            b.set_deps(&arena, &long);
            assert_eq!(a.deps(&arena).iter().collect::<Vec<_>>(), three);
            assert_eq!(b.deps(&arena).iter().collect::<Vec<_>>(), long);
            // The 100-edge list skipped the rest of page 0 (64 edges): page 1 (128) had
            // room.
            assert_eq!(arena.usage(), (61, 3 + 61 + 100));
            // Shorter: in place, its tail dead.
            a.set_deps(&arena, &three[..1]);
            assert_eq!(a.deps(&arena).iter().collect::<Vec<_>>(), &three[..1]);
            assert_eq!(a.peek(&arena).iter().collect::<Vec<_>>(), &three[..1]);
            assert_eq!(a.deps(&arena).prefix(5).iter().count(), 1);
            assert_eq!(arena.usage(), (63, 3 + 61 + 100));
            // Longer: moves, its old edge is dead.
            a.set_deps(&arena, &long[..10]);
            assert_eq!(a.deps(&arena).iter().collect::<Vec<_>>(), &long[..10]);
            assert_eq!(arena.usage().0, 64);
        }
    }

    #[test]
    fn compaction_keeps_every_list_and_drops_the_dead_space() {
        let mut arena = DepArena::new();
        // SAFETY: an all-zero meta is the empty list.
        let mut metas = unsafe { Pages::new(SlotMeta::empty) };
        let slots = 20_000u32;
        let list = |id: u32, len: u32| -> Vec<Dep> { (0..len).map(|i| dep(id + i)).collect() };
        // SAFETY: single-threaded test: we own every slot.
        unsafe {
            // Every slot's list grows one edge at a time: each move leaves its room dead.
            for len in 1..=4 {
                for id in 0..slots {
                    metas.ensure(id).set_deps(&arena, &list(id, len));
                }
            }
            let (dead, end) = arena.usage();
            assert!(dead * 2 > end && dead > 1 << 16, "{dead} of {end}");
            arena.compact(&mut metas);
            let (dead, end) = arena.usage();
            assert!(
                end - dead == u64::from(4 * slots) && dead < 1024,
                "{dead} dead of {end}"
            );
            for id in 0..slots {
                let got: Vec<Dep> = metas.get(id).deps(&arena).iter().collect();
                assert_eq!(got, list(id, 4));
            }
            // Nothing more to reclaim: a second compaction changes nothing.
            arena.compact(&mut metas);
            assert_eq!(arena.usage(), (dead, end));
        }
    }
}
