//! The memo tables of an engine, one per query type, found by `TypeId` without a lock.

use std::any::TypeId;
use std::hash::{Hash, Hasher};
use std::mem::MaybeUninit;

use super::engine::ParallelEngine;
use super::job::{key_text, QueryJob};
use super::pages::ErasedPages;
use super::revision::{Dep, Event, Revision, Revisions, CHANGED_NOW};
use super::table::{state, MemoTable};
use super::{Input, Query};
use crate::serial::SerialState;
use crate::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use crate::sync::{Mutex, UnsafeCell};

/// Memo tables by query type: an open-addressing array keyed by `TypeId`, read without
/// locks (entries are written once, under `insert`, and never cleared before drop).
pub(crate) struct TableMap {
    /// A fixed-size array: a lookup's index needs no bounds check against a length.
    entries: Box<[TypeEntry; MAX_QUERY_TYPES]>,
    insert: Mutex<()>,
}

/// The most query types one engine can hold.
const MAX_QUERY_TYPES: usize = if cfg!(loom) { 8 } else { 4096 };

/// One query type's table. `type_id`, `drop_table` and `changed_at` are written before
/// `table` is published (release) and never again, so a reader that saw `table`
/// non-null (acquire) may read them: the lookup is one load and a compare on one cache
/// line.
struct TypeEntry {
    table: AtomicPtr<()>,
    type_id: UnsafeCell<MaybeUninit<TypeId>>,
    drop_table: UnsafeCell<MaybeUninit<unsafe fn(*mut ())>>,
    compact_deps: UnsafeCell<MaybeUninit<unsafe fn(*mut ())>>,
    changed_at: UnsafeCell<MaybeUninit<ChangedAtFn>>,
    green: UnsafeCell<MaybeUninit<GreenFn>>,
    /// Where the table's slots are and where a slot's state word is in it.
    slot_states: UnsafeCell<MaybeUninit<(ErasedPages, usize)>>,
}

/// Who brings a dependency up to date: the parallel engine for a query job, or the
/// serial engine.
#[derive(Clone, Copy)]
pub(crate) enum Refresher<'a> {
    Parallel(&'a ParallelEngine, &'a QueryJob),
    Serial(&'a SerialState),
}

/// Brings slot `id` of the table at the address up to date in the current revision and
/// returns the revision its result last changed in (the table's type is erased: a
/// dependency names it by index).
type ChangedAtFn = unsafe fn(*const (), Refresher<'_>, u32) -> Revision;

/// [`ChangedAtFn`] for the tables of `Q`.
///
/// # Safety
/// `table` is a live `MemoTable<Q>` of the engine `refresher` works on, with slot `id`.
unsafe fn changed_at_of<Q: Query>(table: *const (), refresher: Refresher<'_>, id: u32) -> Revision {
    // SAFETY: forwarded.
    let table = unsafe { &*(table as *const MemoTable<Q>) };
    match refresher {
        Refresher::Parallel(engine, job) => engine.changed_at(job, table, id),
        Refresher::Serial(state) => state.changed_at(table, id),
    }
}

/// How deep a green check without claims follows stale dependencies before it leaves
/// the rest to claims. Only a request starts such a deep check: the dependency checks
/// of a claimed memo look one level deep, since their own descent brings the rest up to
/// date in order (a deep check at every level of a long chain would repeat its walk).
const GREEN_DEPTH: u32 = 64;

/// What a green check without claims carries down: the revision, where to count the
/// memos it makes green, and how deep it is.
#[derive(Clone, Copy)]
pub(crate) struct Greening<'a> {
    now: Revision,
    revisions: &'a Revisions,
    /// The counter shard of the checking thread (see `Revisions::count`).
    shard: usize,
    depth: u32,
}

impl<'a> Greening<'a> {
    /// A request's check (`deep`: may follow stale dependencies) or a claimed memo's
    /// (one level only), in revision `now`, counting into `shard`.
    pub(crate) fn new(now: Revision, revisions: &'a Revisions, shard: usize, deep: bool) -> Self {
        Greening {
            now,
            revisions,
            shard,
            depth: if deep { 0 } else { GREEN_DEPTH },
        }
    }

    fn deeper(self) -> Self {
        Greening {
            depth: self.depth + 1,
            ..self
        }
    }
}

/// Makes slot `id` of the table at the address (stale, in state `previous`) green
/// without a claim if every dependency is current and unchanged (see
/// `MemoTable::try_green`).
type GreenFn = unsafe fn(*const (), &TableMap, u32, usize, Greening<'_>) -> bool;

/// [`GreenFn`] for the tables of `Q`.
///
/// # Safety
/// `table` is a live `MemoTable<Q>` of `tables`, with slot `id`.
unsafe fn green_of<Q: Query>(
    table: *const (),
    tables: &TableMap,
    id: u32,
    previous: usize,
    green: Greening<'_>,
) -> bool {
    // SAFETY: forwarded.
    tables.try_green(
        unsafe { &*(table as *const MemoTable<Q>) },
        id,
        previous,
        green,
    )
}

impl TypeEntry {
    fn vacant() -> Self {
        TypeEntry {
            table: AtomicPtr::new(std::ptr::null_mut()),
            type_id: UnsafeCell::new(MaybeUninit::uninit()),
            drop_table: UnsafeCell::new(MaybeUninit::uninit()),
            compact_deps: UnsafeCell::new(MaybeUninit::uninit()),
            changed_at: UnsafeCell::new(MaybeUninit::uninit()),
            slot_states: UnsafeCell::new(MaybeUninit::uninit()),
            green: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The entry's table if it holds `type_id`'s; `Err(true)` if the entry is free.
    #[inline]
    fn table_of(&self, type_id: TypeId) -> Result<*mut (), bool> {
        let table = self.table.load(Ordering::Acquire);
        if table.is_null() {
            return Err(true);
        }
        // SAFETY: written before `table` was published, which we saw; never rewritten.
        let same = self
            .type_id
            .with(|t| unsafe { (*t).assume_init() == type_id });
        if same {
            Ok(table)
        } else {
            Err(false)
        }
    }
}

/// Captures the bits a `TypeId` hashes to (it is already a hash).
#[derive(Default)]
struct TypeIdBits(u64);

impl Hasher for TypeIdBits {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

#[inline]
fn type_slot(type_id: TypeId) -> usize {
    let mut bits = TypeIdBits::default();
    type_id.hash(&mut bits);
    bits.finish() as usize % MAX_QUERY_TYPES
}

impl TableMap {
    pub(crate) fn new() -> Self {
        TableMap {
            // SAFETY: a zeroed entry is a vacant one (null pointer, uninitialised cells);
            // the length is non-zero.
            entries: unsafe { crate::sync::zeroed_slice(MAX_QUERY_TYPES, TypeEntry::vacant) }
                .try_into()
                .unwrap_or_else(|_| unreachable!("made with MAX_QUERY_TYPES entries")),
            insert: Mutex::new(()),
        }
    }

    #[inline]
    pub(crate) fn get<Q: Query>(&self) -> &MemoTable<Q> {
        // SAFETY: tables live as long as the map; shared access is all `&self` gives.
        unsafe { &*self.find::<Q>() }
    }

    pub(crate) fn get_mut<Q: Query>(&mut self) -> &mut MemoTable<Q> {
        // SAFETY: `&mut self` guarantees no other reference into the map is live, and
        // the pointer came from `Box::into_raw`.
        unsafe { &mut *self.find::<Q>() }
    }

    /// Brings the dependency `dep` (a slot of one of these tables) up to date and
    /// returns the revision its result last changed in (see `revision.rs`).
    pub(crate) fn changed_at(&self, dep: Dep, refresher: Refresher<'_>) -> Revision {
        let entry = &self.entries[dep.table as usize];
        let table = entry.table.load(Ordering::Acquire);
        assert!(!table.is_null(), "a dependency names a live table");
        // SAFETY: written before `table` was published, which we saw; the table is the
        // type the function was made for, and the dependency's slot exists in it.
        unsafe {
            let changed_at = entry.changed_at.with(|f| (*f).assume_init());
            changed_at(table, refresher, dep.id)
        }
    }

    /// The revision the dependency `dep` last changed in if it is current in revision
    /// `green.now`, or if it was stale and could be made green without a claim (see
    /// `MemoTable::try_green`, recursively, at most [`GREEN_DEPTH`] deep); else
    /// [`CHANGED_NOW`]: it changed, or must be brought up to date by a claim (it is
    /// running, or one of its dependencies is), or `dep` names no slot this thread can
    /// see (callers may read `dep` without synchronising with whoever wrote it).
    #[inline]
    pub(crate) fn peek(&self, dep: Dep, green: Greening<'_>) -> Revision {
        let Some(entry) = self.entries.get(dep.table as usize) else {
            return CHANGED_NOW;
        };
        let table = entry.table.load(Ordering::Acquire);
        if table.is_null() {
            return CHANGED_NOW;
        }
        // SAFETY: written before `table` was published, which we saw; the table (and so
        // its slot pages) lives as long as the map, and a non-null address is a slot's,
        // whose state word is at `offset`.
        let word = unsafe {
            let (slots, offset) = entry.slot_states.with(|f| (*f).assume_init());
            let slot = slots.try_get(dep.id);
            if slot.is_null() {
                return CHANGED_NOW;
            }
            (*(slot.add(offset) as *const AtomicUsize)).load(Ordering::Acquire)
        };
        let current = state::is_current(word, green.now)
            || (state::is_final(word)
                && green.depth < GREEN_DEPTH
                && self.green(entry, table, dep.id, word, green));
        if current {
            state::changed_at(word)
        } else {
            CHANGED_NOW
        }
    }

    /// Makes the stale slot `id` (state `previous`) of `entry`'s table (at `table`)
    /// green without a claim, if it can (see [`TableMap::peek`]).
    #[cold]
    #[inline(never)]
    fn green(
        &self,
        entry: &TypeEntry,
        table: *mut (),
        id: u32,
        previous: usize,
        green: Greening<'_>,
    ) -> bool {
        // SAFETY: `peek` saw this entry's table (`table`) published; the function was
        // written before, for the table's type; the slot exists (its state was read).
        unsafe {
            let green_of = entry.green.with(|f| (*f).assume_init());
            green_of(table, self, id, previous, green.deeper())
        }
    }

    /// Makes the stale memo `id` of `table` (state `previous`) current again without a
    /// claim if its dependencies allow (see `MemoTable::try_green`), and counts it:
    /// every green check, a request's or a dependency's, on either engine.
    #[inline]
    pub(crate) fn try_green<Q: Query>(
        &self,
        table: &MemoTable<Q>,
        id: u32,
        previous: usize,
        green: Greening<'_>,
    ) -> bool {
        let made = table.try_green(id, previous, green.now, |dep| self.peek(dep, green));
        if made {
            green.revisions.count(Event::Verified, || green.shard);
        }
        made
    }

    /// Sets input `(I, key)` to `value` (both engines' `Engine::set_input`): in an
    /// incremental engine, in the current revision, or a new one if a run happened
    /// since the last change (then dependency lists are compacted, between runs).
    pub(crate) fn set_input<I: Input>(
        &mut self,
        revisions: &mut Revisions,
        key: I::Key,
        value: I::Value,
    ) {
        let hash = MemoTable::<I>::hash(&key);
        let read_before = self.get_mut::<I>().find(hash, &key).is_some();
        let revision = revisions.now;
        let changed_in =
            revisions.input_changes(read_before, || format!("{}({})", I::NAME, key_text(&key)));
        if revisions.now != revision {
            self.compact_deps();
        }
        self.get_mut::<I>().set(hash, key, value, changed_in);
    }

    /// Reclaims the dead edges of every table's dependency lists (see
    /// `deps::DepArena::compact`): between runs, when a revision begins.
    fn compact_deps(&mut self) {
        // SAFETY: `&mut self`: nobody else uses the tables; a published entry has its
        // compaction function, made for its table's type.
        self.each_table(|entry, table| unsafe {
            let compact = entry.compact_deps.with(|d| (*d).assume_init());
            compact(table);
        });
    }

    /// Calls `f` with every table made so far and its entry (exclusive access).
    fn each_table(&mut self, mut f: impl FnMut(&TypeEntry, *mut ())) {
        for entry in self.entries.iter() {
            let table = entry.table.load(Ordering::Relaxed);
            if !table.is_null() {
                f(entry, table);
            }
        }
    }

    /// The table of `Q`, made on first use.
    #[inline]
    fn find<Q: Query>(&self) -> *mut MemoTable<Q> {
        let type_id = TypeId::of::<MemoTable<Q>>();
        let mut index = type_slot(type_id);
        loop {
            match self.entries[index].table_of(type_id) {
                // The entry's table was made as a `MemoTable<Q>`: same TypeId.
                Ok(table) => return table as *mut MemoTable<Q>,
                Err(false) => index = (index + 1) % MAX_QUERY_TYPES,
                Err(true) => return self.insert::<Q>(),
            }
        }
    }

    #[cold]
    fn insert<Q: Query>(&self) -> *mut MemoTable<Q> {
        let _lock = self.insert.lock();
        let type_id = TypeId::of::<MemoTable<Q>>();
        let mut index = type_slot(type_id);
        for _ in 0..MAX_QUERY_TYPES {
            let entry = &self.entries[index];
            match entry.table_of(type_id) {
                Ok(table) => return table as *mut MemoTable<Q>,
                Err(false) => index = (index + 1) % MAX_QUERY_TYPES,
                Err(true) => {
                    unsafe fn drop_table<Q: Query>(table: *mut ()) {
                        // SAFETY: made by `Box::into_raw` below, dropped once.
                        drop(unsafe { Box::from_raw(table as *mut MemoTable<Q>) });
                    }
                    unsafe fn compact_deps<Q: Query>(table: *mut ()) {
                        // SAFETY: made by `Box::into_raw` below; the caller has `&mut`
                        // access to the map.
                        unsafe { (*(table as *mut MemoTable<Q>)).compact_deps() };
                    }
                    let table = Box::into_raw(Box::new(MemoTable::<Q>::new(index as u32)));
                    // SAFETY: a vacant entry, and we hold the insert lock: no other
                    // writer, and readers look at the cells only after `table` is set.
                    unsafe {
                        entry.type_id.with_mut(|t| (*t).write(type_id));
                        entry
                            .drop_table
                            .with_mut(|d| (*d).write(drop_table::<Q> as unsafe fn(*mut ())));
                        entry
                            .compact_deps
                            .with_mut(|d| (*d).write(compact_deps::<Q> as unsafe fn(*mut ())));
                        entry
                            .changed_at
                            .with_mut(|f| (*f).write(changed_at_of::<Q> as ChangedAtFn));
                        entry
                            .green
                            .with_mut(|f| (*f).write(green_of::<Q> as GreenFn));
                        entry
                            .slot_states
                            .with_mut(|f| (*f).write((*table).slot_states()));
                    }
                    entry.table.store(table as *mut (), Ordering::Release);
                    return table;
                }
            }
        }
        panic!("weft: more than {MAX_QUERY_TYPES} query types in one engine");
    }
}

impl Drop for TableMap {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: nobody else uses the tables; a published entry has its
        // drop function, and each table was made by `Box::into_raw` and is freed once.
        self.each_table(|entry, table| unsafe {
            let drop_table = entry.drop_table.with(|d| (*d).assume_init());
            drop_table(table);
        });
    }
}

// SAFETY: the raw pointers own `MemoTable`s, whose contents are `Send` and `Sync` (keys
// and values are, by the `Query` bounds; slots synchronise themselves); the cells are
// written once before publication.
unsafe impl Send for TableMap {}
// SAFETY: as above.
unsafe impl Sync for TableMap {}
