//! The memo table of one query type: key -> dense id -> slot, with a lock-free hit path.
//!
//! **Slots** live in never-moving [`Pages`] indexed by a dense `u32` id, so no entry is
//! boxed, a `&Slot` stays valid while the table grows, and a caller can borrow a value
//! for the engine's lifetime (`Cx::get_ref`). A slot holds the key, the value and one
//! state word (see [`state`]). Errors are rare and large, so they live in a side map.
//!
//! **The index** is split in shards by the key's hash. A shard is an open-addressing
//! array of `u64` buckets, each the slot's address with the low [`TAG_BITS`] bits of the
//! key's hash in the top bits (0: empty). Readers take no lock and write nothing shared:
//! load the shard's current array (its address; a header holds its size), probe, compare
//! the key in the slot the bucket points to. A hit is five dependent loads: the query
//! type's entry, the shard's word, the array's header (64 hot lines per table), the
//! bucket, the slot (a bucket holding the slot's address, not its id, saves the page
//! lookup in between; the header saves decoding a size packed into the word). Writers
//! (the claim of a new key) take the shard's mutex, probe again, write the slot, then
//! publish its bucket. An array three-quarters full is copied into one twice its size
//! (up to `1 << TAG_BITS` buckets the tags say where each goes, so no key is touched;
//! beyond, the keys are hashed again) and published; the old array is kept until the
//! table drops, because a reader may still be probing it. The old arrays together are
//! smaller than the current one, so this bounds the waste without any epoch or reader
//! registration. The shards' array words sit together, apart from the shard locks:
//! lookups read them, only growth writes.
//!
//! Ids come in blocks of consecutive ids, one open block per worker ([`IdLanes`]), so
//! neighbouring slots are claimed, written and completed by the same worker.
//!
//! **Dense tables** (a query with [`Query::KEY_INDEX`]) have no index: the key's own
//! index is its slot's id. A lookup is the page load and the state word; a claim is one
//! CAS of the state from `VACANT` to [`state::CLAIMING`], then the key's write, then
//! the owner's release store (the key's clone, the only user code, is made before the
//! CAS). Both check the key stored at the index against the request's, since two keys
//! with one index would otherwise share a memo.

use std::hash::{BuildHasher, Hash};
use std::mem::MaybeUninit;

use rustc_hash::FxHashMap;

use super::deps::{Dep, DepArena, DepBuf, Deps, SlotMeta};
use super::error::QueryError;
use super::pages::{ErasedPages, Pages};
use super::revision::{self, Revision};
use super::Query;
use crate::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use crate::sync::{Mutex, UnsafeCell};

/// The values of a slot's state word.
///
/// `VACANT` until the slot is claimed; then the owner's address (a query job, or a
/// serial engine frame, both aligned to 8) while it computes, with [`state::WAITED`]
/// set once a waiter registered (see `graph.rs`); then a final state: [`state::input`],
/// or [`state::done`] / [`state::failed`] (the error is in the table's side map).
/// Final states have the top bit set, which no address has, and carry the two
/// revisions red-green needs (see `revision.rs`; both always 0 in a batch engine): the
/// one the memo was last **verified** in, and the one its result last **changed** in.
/// Keeping both in the word makes a hit one load and a masked compare, and a
/// dependency check one load.
///
/// Layout of a final state: bit 63 set; bits 32..63 the changed revision; bits 2..32
/// the verified revision (of `done` and `failed`; 0 for an input, always current);
/// bits 0..2 the kind.
pub(crate) mod state {
    use super::super::revision::Revision;

    pub(crate) const VACANT: usize = 0;
    /// A dense table's slot between the CAS that claims it and the store that
    /// publishes its owner, while the claimer writes the key (no user code runs there).
    /// Seen only by `lookup` (a miss) and `claim` (waits for the owner): every other
    /// reader reaches a slot through them.
    pub(crate) const CLAIMING: usize = 2;
    /// The top bit: set in every final state.
    const FINAL: usize = 1 << 63;
    const KIND: usize = 3;
    const DONE: usize = 1;
    const FAILED: usize = 2;
    const INPUT: usize = 3;
    const VERIFIED_SHIFT: u32 = 2;
    const CHANGED_SHIFT: u32 = 32;
    /// Revisions fit in 30 bits (the verified field's width).
    pub(crate) const REVISION_BITS: u32 = 30;
    const CHANGED_MASK: usize = ((1 << (63 - CHANGED_SHIFT)) - 1) << CHANGED_SHIFT;
    /// Low bit of a running state: a waiter is registered, the owner's completion must
    /// take the wait-graph lock to wake it.
    pub(crate) const WAITED: usize = 1;

    const _: () = assert!(usize::BITS == 64, "weft's memo states need 64-bit words");

    /// A value verified in `verified`, last changed in `changed`.
    #[inline]
    pub(crate) const fn done(verified: Revision, changed: Revision) -> usize {
        FINAL | (changed as usize) << CHANGED_SHIFT | (verified as usize) << VERIFIED_SHIFT | DONE
    }

    /// An error verified in `verified`, last changed in `changed`.
    #[inline]
    pub(crate) const fn failed(verified: Revision, changed: Revision) -> usize {
        FINAL | (changed as usize) << CHANGED_SHIFT | (verified as usize) << VERIFIED_SHIFT | FAILED
    }

    /// The final state `previous` (a value or an error) verified again in `now`,
    /// unchanged: its result and "changed" revision stay.
    #[inline]
    pub(crate) fn reverified(previous: usize, now: Revision) -> usize {
        let changed = changed_at(previous);
        if has_value(previous) {
            done(now, changed)
        } else {
            failed(now, changed)
        }
    }

    /// An input set in revision `changed`.
    #[inline]
    pub(crate) const fn input(changed: Revision) -> usize {
        FINAL | (changed as usize) << CHANGED_SHIFT | INPUT
    }

    /// True for an input's state.
    #[inline]
    pub(crate) fn is_input(state: usize) -> bool {
        state & (FINAL | KIND) == FINAL | INPUT
    }

    /// True while an owner computes the slot.
    #[inline]
    pub(crate) fn is_running(state: usize) -> bool {
        state != VACANT && state & FINAL == 0
    }

    /// True for a final state that holds a value (not an error).
    #[inline]
    pub(crate) fn has_value(state: usize) -> bool {
        state & FINAL != 0 && state & KIND != FAILED
    }

    /// True for a final state that holds an error.
    #[inline]
    pub(crate) fn has_error(state: usize) -> bool {
        state & FINAL != 0 && state & KIND == FAILED
    }

    /// The revision a `done` or `failed` state was verified in.
    #[inline]
    pub(crate) fn verified_at(state: usize) -> Revision {
        ((state >> VERIFIED_SHIFT) & ((1 << REVISION_BITS) - 1)) as Revision
    }

    /// The revision a final state's result last changed in.
    #[inline]
    pub(crate) fn changed_at(state: usize) -> Revision {
        ((state & CHANGED_MASK) >> CHANGED_SHIFT) as Revision
    }

    /// True for a state holding a value current in revision `now` (a hit).
    #[inline]
    pub(crate) fn is_current_value(state: usize, now: Revision) -> bool {
        let verified = state & !CHANGED_MASK;
        verified == done(now, 0) || verified == FINAL | INPUT
    }

    /// [`is_current_value`] in a batch engine, whose results are all of revision 0:
    /// `done(0, 0)` or `input(0)`.
    #[inline]
    pub(crate) fn is_value_of_batch(state: usize) -> bool {
        state | (DONE ^ INPUT) == input(0)
    }

    /// True for a state holding an error current in revision `now`.
    #[inline]
    pub(crate) fn is_current_error(state: usize, now: Revision) -> bool {
        state & !CHANGED_MASK == failed(now, 0)
    }

    /// True for a final state current in revision `now`.
    #[inline]
    pub(crate) fn is_current(state: usize, now: Revision) -> bool {
        is_current_value(state, now) || is_current_error(state, now)
    }

    /// True for a final state (a result or an input), current or not.
    #[inline]
    pub(crate) fn is_final(state: usize) -> bool {
        state & FINAL != 0
    }

    /// The owner's address in a running state.
    #[inline]
    pub(crate) fn owner(state: usize) -> usize {
        state & !WAITED
    }
}

/// One memoized `(Q, key)`.
pub(crate) struct Slot<Q: Query> {
    pub(crate) state: AtomicUsize,
    /// The slot's id in its table (dependencies name slots by id). Written with the key.
    id: UnsafeCell<u32>,
    /// Written once under the shard lock before the slot is published.
    key: UnsafeCell<MaybeUninit<Q::Key>>,
    /// Written once by the owner before the state turns `DONE` (or, with `&mut` access,
    /// by `set`); read only after that.
    value: UnsafeCell<MaybeUninit<Q::Value>>,
}

impl<Q: Query> Slot<Q> {
    fn vacant() -> Self {
        Slot {
            state: AtomicUsize::new(state::VACANT),
            id: UnsafeCell::new(0),
            key: UnsafeCell::new(MaybeUninit::uninit()),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The key of a published slot (it never changes until the table drops).
    #[inline]
    pub(crate) fn key(&self) -> &Q::Key {
        // SAFETY: slots are reached only through published buckets (or by the claimer),
        // which come after the key's write; nobody writes it again.
        self.key.with(|k| unsafe { (*k).assume_init_ref() })
    }

    /// The id of a published slot (see [`Slot::key`]).
    #[inline]
    pub(crate) fn id(&self) -> u32 {
        // SAFETY: as for `key`: written before publication, never again.
        self.id.with(|i| unsafe { *i })
    }
}

// SAFETY: the cells are written only as the state protocol allows (module docs): the
// key before publication, the value by its one owner before the final state.
unsafe impl<Q: Query> Sync for Slot<Q> {}
// SAFETY: a slot owns a key and a value, which are `Send`.
unsafe impl<Q: Query> Send for Slot<Q> {}

/// What a request found.
pub(crate) enum Memo<'t, V> {
    /// The value (or, for a failed query, the error).
    Ready(Result<&'t V, QueryError>),
    /// An owner is computing it; the state word as loaded.
    Running(usize),
    /// A memo from an older revision (incremental engines): the state word as loaded.
    /// Claim it to refresh it.
    Stale(usize),
}

/// Where a lookup that missed stopped: the shard's bucket array it probed (its word)
/// and the empty bucket that ended the key's probe sequence. A claim reuses it instead
/// of probing again when neither has changed since.
#[derive(Clone, Copy)]
pub(crate) struct Miss {
    word: u64,
    index: usize,
}

impl Miss {
    /// No lookup made, or the shard had no array yet: the claim probes.
    pub(crate) const NONE: Miss = Miss { word: 0, index: 0 };
}

/// The outcome of [`MemoTable::claim`].
pub(crate) enum Claim<'t, Q: Query> {
    /// The key was there (complete or in progress).
    Existing(&'t Slot<Q>),
    /// A new slot, now owned by the caller (its state is the `owner` word given).
    Claimed(&'t Slot<Q>),
}

/// Hash used for keys: fast, and good enough with the final mix below.
#[inline]
fn hash_key<K: Hash>(key: &K) -> u64 {
    let h = rustc_hash::FxBuildHasher.hash_one(key);
    // Fold high bits down so that the bucket index (low bits) sees all of them.
    h ^ (h >> 29) ^ (h >> 47)
}

const SHARDS: usize = if cfg!(loom) { 2 } else { 64 };
const INITIAL_BUCKETS: usize = if cfg!(loom) { 4 } else { 16 };

/// The memo table of query `Q`.
pub(crate) struct MemoTable<Q: Query> {
    /// Each shard's current bucket array (0 until the first claim): its address (its
    /// header holds its size, written before the address is published).
    /// Every lookup reads these and only growth writes them, so they sit together,
    /// away from the locks that every claim writes.
    arrays: [AtomicU64; SHARDS],
    writers: [Writer; SHARDS],
    slots: Pages<Slot<Q>>,
    ids: IdLanes,
    /// Where each slot's dependency list lives, by slot id, and the lists (incremental
    /// engines only: a batch engine never allocates a page of either).
    meta: Pages<SlotMeta>,
    dep_lists: DepArena,
    /// Errors of failed slots, by slot address.
    errors: Mutex<FxHashMap<usize, QueryError>>,
    /// This table's index in its engine's `TableMap` (a dependency names it).
    pub(crate) index: u32,
}

/// What a slot's owner stores in an incremental engine, besides the result.
pub(crate) struct Record {
    /// The current revision.
    pub(crate) now: Revision,
    /// What the execution read, in order.
    pub(crate) deps: DepBuf,
}

/// How [`MemoTable::finish`] stored a result.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// A new result (or the first one).
    Changed,
    /// Equal to the old memo's result: the old one stays, with its "changed" revision.
    Backdated,
}

/// The lock of one shard's writers, on its own cache line.
#[repr(align(64))]
struct Writer(Mutex<ShardState>);

/// A shard's writer state.
struct ShardState {
    len: u32,
    /// Arrays replaced by larger ones, freed when the table drops.
    retired: Vec<Buckets>,
}

/// Lanes of slot ids (see [`IdLanes`]).
const ID_LANES: usize = if cfg!(loom) { 2 } else { 16 };
/// Consecutive ids a lane takes at a time.
const ID_BLOCK: u32 = if cfg!(loom) { 2 } else { 64 };

/// Slot ids, handed out in blocks of [`ID_BLOCK`] consecutive ids, one open block per
/// lane (the claiming worker's index, modulo [`ID_LANES`]). Slots next to each other in
/// memory are then claimed, written and completed by one worker: two workers claiming
/// different keys do not write one cache line.
pub(crate) struct IdLanes {
    lanes: [IdLane; ID_LANES],
    /// Blocks handed out so far.
    blocks: AtomicU32,
}

/// A lane's open block: `next | end << 32` (empty when `next == end`).
#[repr(align(64))]
struct IdLane(AtomicU64);

impl IdLanes {
    pub(crate) fn new() -> Self {
        IdLanes {
            lanes: std::array::from_fn(|_| IdLane(AtomicU64::new(0))),
            blocks: AtomicU32::new(0),
        }
    }

    /// A fresh id for a claim made in `lane`. Lanes are normally used by one worker
    /// each, but two pools' workers may share one: the cursor is a CAS (a block taken
    /// by a claim that lost the race stays unused).
    #[inline]
    pub(crate) fn next(&self, lane: usize) -> u32 {
        let cursor = &self.lanes[lane % ID_LANES].0;
        let mut open = cursor.load(Ordering::Relaxed);
        loop {
            let (next, end) = (open as u32, (open >> 32) as u32);
            let (id, rest) = if next < end {
                (next, open + 1)
            } else {
                self.new_block()
            };
            if crate::sync::mutant("id_lane_not_atomic") {
                // Deliberately broken (loom builds only): two claims in one lane can
                // take the same id.
                cursor.store(rest, Ordering::Relaxed);
                return id;
            }
            match cursor.compare_exchange_weak(open, rest, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return id,
                Err(now) => open = now,
            }
        }
    }

    /// A fresh block: its first id, and the lane's cursor with that id taken.
    #[cold]
    fn new_block(&self) -> (u32, u64) {
        let start = self
            .blocks
            .fetch_add(1, Ordering::Relaxed)
            .checked_mul(ID_BLOCK)
            .filter(|&start| start <= u32::MAX - ID_BLOCK)
            .expect("weft: more than 4 billion keys in one query's memo table");
        (
            start,
            u64::from(start + 1) | u64::from(start + ID_BLOCK) << 32,
        )
    }
}

/// An owned bucket array: a power-of-two number of buckets after a header word that
/// holds their mask (capacity - 1), so that a shard's word is just the array's address
/// and a lookup finds the bucket with one load and one `and`.
struct Buckets {
    /// The header; the buckets follow it.
    header: *mut AtomicU64,
    capacity: usize,
}

// SAFETY: a bucket array is plain atomics, owned by its shard.
unsafe impl Send for Buckets {}

impl Buckets {
    fn new(capacity: usize) -> Self {
        debug_assert!(capacity.is_power_of_two());
        // SAFETY: a zero `AtomicU64` is `AtomicU64::new(0)`; the length is non-zero.
        let array = unsafe { crate::sync::zeroed_slice(capacity + 1, || AtomicU64::new(0)) };
        // Written before the array is published (with release), never again.
        array[0].store(capacity as u64 - 1, Ordering::Relaxed);
        Buckets {
            header: Box::into_raw(array) as *mut AtomicU64,
            capacity,
        }
    }

    /// The shard word that publishes this array.
    fn word(&self) -> u64 {
        self.header as u64
    }

    /// The owner of the array a shard word names.
    ///
    /// # Safety
    /// `word` names a live array, and the caller becomes its one owner.
    unsafe fn from_word(word: u64) -> Buckets {
        // SAFETY: forwarded: a live array has a header.
        let buckets = unsafe { Buckets::of_word(word) };
        Buckets {
            header: word as *mut AtomicU64,
            capacity: buckets.len(),
        }
    }

    /// The buckets of the array a shard word names (none for 0).
    ///
    /// # Safety
    /// `word` was loaded from a shard (with acquire), so it is 0 or names a live array
    /// whose header it sees.
    #[inline]
    unsafe fn of_word<'a>(word: u64) -> &'a [AtomicU64] {
        if word == 0 {
            return &[];
        }
        let header = word as *const AtomicU64;
        // SAFETY: the caller's precondition; arrays live until the table drops, and the
        // header is followed by `mask + 1` buckets.
        unsafe {
            let mask = (*header).load(Ordering::Relaxed) as usize;
            std::slice::from_raw_parts(header.add(1), mask + 1)
        }
    }
}

impl Drop for Buckets {
    fn drop(&mut self) {
        // SAFETY: made by `Box::into_raw` of a slice of the header and the buckets,
        // freed once (the owner drops it only when no reader can hold it: with the
        // table).
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.header,
                self.capacity + 1,
            )))
        };
    }
}

/// Bits of a key's hash kept in its bucket (above the slot's address): enough to place
/// the bucket again in arrays of up to `1 << TAG_BITS` buckets, and to skip most
/// foreign keys without reading their slots. Small in unit tests, so that growth past
/// that size (which hashes the keys again, running their `Hash` under the shard lock)
/// is exercised there; loom models hold too few keys to grow that far.
const TAG_BITS: u32 = if cfg!(test) { 3 } else { 16 };
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
/// Bits of a bucket that hold the slot's address.
const SLOT_ADDRESS_BITS: u64 = (1 << 48) - 1;

/// The bucket word of `slot`, whose key hashes to `hash`.
#[inline]
fn bucket_of<Q: Query>(slot: &Slot<Q>, hash: u64) -> u64 {
    let address = slot as *const Slot<Q> as u64;
    assert!(
        address & !SLOT_ADDRESS_BITS == 0,
        "weft: a memo slot above 2^48, which a bucket cannot hold"
    );
    address | (hash & TAG_MASK) << 48
}

/// The slot a (non-empty) bucket points to.
///
/// # Safety
/// `bucket` was loaded from a table of `Q` after its publication (acquire), and the
/// table is alive for `'t`.
#[inline]
unsafe fn slot_of<'t, Q: Query>(bucket: u64) -> &'t Slot<Q> {
    // SAFETY: forwarded: buckets hold addresses of live, published slots.
    unsafe { &*((bucket & SLOT_ADDRESS_BITS) as *const Slot<Q>) }
}

/// Panics unless `slot`, the published slot at dense index `index`, holds `key`:
/// [`Query::KEY_INDEX`] gave two different keys one index.
#[inline]
fn check_dense_key<Q: Query>(index: u32, slot: &Slot<Q>, key: &Q::Key) {
    if slot.key() != key {
        dense_collision::<Q>(index, slot.key(), key);
    }
}

#[cold]
#[inline(never)]
fn dense_collision<Q: Query>(index: u32, stored: &Q::Key, requested: &Q::Key) -> ! {
    panic!(
        "weft: `{}::KEY_INDEX` gave index {index} to two different keys, {} and {}",
        Q::NAME,
        super::key_text(stored),
        super::key_text(requested),
    )
}

/// Whether `bucket` may hold a key that hashes to `hash` (its tag matches).
#[inline]
fn tag_matches(bucket: u64, hash: u64) -> bool {
    bucket >> 48 == hash & TAG_MASK
}

impl<Q: Query> MemoTable<Q> {
    pub(crate) fn new(index: u32) -> Self {
        MemoTable {
            arrays: std::array::from_fn(|_| AtomicU64::new(0)),
            writers: std::array::from_fn(|_| {
                Writer(Mutex::new(ShardState {
                    len: 0,
                    retired: Vec::new(),
                }))
            }),
            // SAFETY: a zeroed slot is `Slot::vacant()` (state 0, uninitialised cells),
            // and a slot is not zero-sized.
            slots: unsafe { Pages::new(Slot::vacant) },
            ids: IdLanes::new(),
            // SAFETY: an all-zero `SlotMeta` is `SlotMeta::empty()` (a zero range), and
            // it is not zero-sized.
            meta: unsafe { Pages::new(SlotMeta::empty) },
            dep_lists: DepArena::new(),
            errors: Mutex::new(FxHashMap::default()),
            index,
        }
    }

    #[inline]
    fn shard_index(hash: u64) -> usize {
        (hash >> 58) as usize % SHARDS
    }

    /// The hash `lookup`, `find` and `claim` want for `key` (0 for a dense table, which
    /// hashes nothing).
    #[inline]
    pub(crate) fn hash(key: &Q::Key) -> u64 {
        if Q::KEY_INDEX.is_some() {
            0
        } else {
            hash_key(key)
        }
    }

    /// The slot of `key`, if it was ever claimed. Takes no lock and writes no shared
    /// memory. `hash` is [`MemoTable::hash`]'s.
    #[inline]
    pub(crate) fn find(&self, hash: u64, key: &Q::Key) -> Option<&Slot<Q>> {
        self.lookup(hash, key).ok()
    }

    /// [`MemoTable::find`], saying where a miss stopped (for [`MemoTable::claim`]).
    #[inline]
    pub(crate) fn lookup(&self, hash: u64, key: &Q::Key) -> Result<&Slot<Q>, Miss> {
        if let Some(index_of) = Q::KEY_INDEX {
            return self.lookup_dense(index_of(key), key).ok_or(Miss::NONE);
        }
        let word = self.arrays[Self::shard_index(hash)].load(Ordering::Acquire);
        if word == 0 {
            return Err(Miss::NONE);
        }
        // SAFETY: loaded from the shard; published arrays live until the table drops.
        self.probe(unsafe { Buckets::of_word(word) }, hash, key)
            .map_err(|index| Miss { word, index })
    }

    /// The slot of `key` in `buckets`, or the index of the empty bucket that ends its
    /// probe sequence.
    #[inline]
    fn probe(&self, buckets: &[AtomicU64], hash: u64, key: &Q::Key) -> Result<&Slot<Q>, usize> {
        let mask = buckets.len() - 1;
        let mut index = hash as usize & mask;
        loop {
            let bucket = buckets[index].load(Ordering::Acquire);
            if bucket == 0 {
                return Err(index);
            }
            if tag_matches(bucket, hash) {
                // SAFETY: the acquire load above saw the slot's publication; slots live
                // as long as the table.
                let slot = unsafe { slot_of::<Q>(bucket) };
                if slot.key() == key {
                    return Ok(slot);
                }
            }
            index = (index + 1) & mask;
        }
    }

    /// A dense table's slot at `index`, if it was claimed (and its owner published).
    #[inline]
    fn lookup_dense(&self, index: u32, key: &Q::Key) -> Option<&Slot<Q>> {
        let slot = self.slots.try_get(index)?;
        let word = slot.state.load(Ordering::Acquire);
        if word == state::VACANT || word == state::CLAIMING {
            return None;
        }
        // The acquire load saw the owner's publication, which follows the key's write.
        check_dense_key(index, slot, key);
        Some(slot)
    }

    /// A dense table's claim: the slot at `key`'s index, or (state `VACANT`) a claim of
    /// it for `owner` with a clone of `key`.
    fn claim_dense(&self, index: u32, key: &Q::Key, owner: usize) -> Claim<'_, Q> {
        let slot = self.slots.ensure(index);
        // The clone (user code) is made before the claim, so a panic in it leaves the
        // slot as it was; a claim lost to another requester drops it.
        let copy = key.clone();
        let mut spins = 0u32;
        loop {
            let word = slot.state.load(Ordering::Acquire);
            if word == state::CLAIMING {
                // Another requester is between its CAS and its owner's store: a few
                // instructions, unless its thread was descheduled there.
                spins += 1;
                if spins % 64 == 0 {
                    crate::sync::thread::yield_now();
                } else {
                    crate::sync::thread::spin_loop();
                }
                continue;
            }
            if word != state::VACANT {
                check_dense_key(index, slot, key);
                return Claim::Existing(slot);
            }
            if slot
                .state
                .compare_exchange(
                    state::VACANT,
                    state::CLAIMING,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_err()
            {
                continue;
            }
            // Deliberately broken (loom builds only): the owner is published before
            // the key is written.
            let early = crate::sync::mutant("dense_owner_before_key");
            if early {
                slot.state.store(owner, Ordering::Release);
            }
            // SAFETY: the CAS made this thread the slot's only writer, and no reader
            // touches the cells of a slot in state `CLAIMING` (they wait for the store
            // below, which publishes these writes). Nothing here can unwind.
            unsafe {
                slot.id.with_mut(|i| *i = index);
                slot.key.with_mut(|k| (*k).write(copy));
            }
            if !early {
                slot.state.store(owner, Ordering::Release);
            }
            return Claim::Claimed(slot);
        }
    }

    /// The slot with id `id` (one a dependency or a bucket named).
    #[inline]
    pub(crate) fn slot(&self, id: u32) -> &Slot<Q> {
        self.slots.get(id)
    }

    /// Where the slots are, and the offset of the state word in a slot: what a
    /// dependency check that knows the table only by index reads.
    pub(crate) fn slot_states(&self) -> (ErasedPages, usize) {
        (self.slots.erased(), std::mem::offset_of!(Slot<Q>, state))
    }

    /// The dependencies of slot `id`'s last execution.
    ///
    /// # Safety
    /// The caller owns the slot, or has `&mut` access to the table.
    #[inline]
    pub(crate) unsafe fn deps(&self, id: u32) -> Deps<'_> {
        // SAFETY: forwarded.
        unsafe { self.meta.ensure(id).deps(&self.dep_lists) }
    }

    /// Makes the stale memo `slot` (id `id`, state `previous`) current again without
    /// claiming it, if every dependency is current and unchanged since its verification
    /// (`peek` reports when each last changed, without bringing it up to date): the
    /// common case of a check, at the cost of one load per dependency. `false` if a
    /// dependency is not known to be unchanged, or if the state moved on meanwhile.
    ///
    /// Sound without a claim: the list is read as a non-owner may (see
    /// `SlotMeta::peek`), and the conclusion is published by a CAS from `previous`,
    /// which fails if anyone claimed the slot since that state was loaded (a claim is a
    /// CAS from it too, and a memo never returns to a state of an older revision). So
    /// when it succeeds, the list read was the one `previous` was computed with.
    #[inline]
    pub(crate) fn try_green(
        &self,
        id: u32,
        previous: usize,
        now: Revision,
        peek: impl Fn(Dep) -> Revision,
    ) -> bool {
        let Some(meta) = self.meta.try_get(id) else {
            return false;
        };
        let verified_at = state::verified_at(previous);
        if !meta
            .peek(&self.dep_lists)
            .iter()
            .all(|dep| peek(dep) <= verified_at)
        {
            return false;
        }
        let green = state::reverified(previous, now);
        let slot = self.slot(id);
        if crate::sync::mutant("green_by_store") {
            // Deliberately broken (loom builds only): a claim made meanwhile is
            // overwritten.
            slot.state.store(green, Ordering::Release);
            return true;
        }
        slot.state
            .compare_exchange(previous, green, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Reclaims the dead edges of dependency lists that moved (between runs; see
    /// [`DepArena::compact`]).
    pub(crate) fn compact_deps(&mut self) {
        self.dep_lists.compact(&mut self.meta);
    }

    /// What `slot` (found or claimed in this table) holds now, in revision `now`.
    #[inline]
    pub(crate) fn read<'t>(&'t self, slot: &'t Slot<Q>, now: Revision) -> Memo<'t, Q::Value> {
        let word = slot.state.load(Ordering::Acquire);
        if state::is_current_value(word, now) {
            // SAFETY: the acquire load saw the write that preceded the final state.
            Memo::Ready(Ok(unsafe { self.value_of(slot) }))
        } else if state::is_current_error(word, now) {
            Memo::Ready(Err(self.error_of(slot)))
        } else if state::is_running(word) {
            Memo::Running(word)
        } else {
            Memo::Stale(word)
        }
    }

    /// The value of `slot` if it is current in revision `now` and did not fail: the
    /// hit path.
    /// `INCREMENTAL` is the engine's kind: in a batch engine every result is verified
    /// and changed in revision 0, so `now` need not be read.
    #[inline]
    pub(crate) fn current_value<'t, const INCREMENTAL: bool>(
        &'t self,
        slot: &'t Slot<Q>,
        now: Revision,
    ) -> Option<&'t Q::Value> {
        let word = slot.state.load(Ordering::Acquire);
        let current = if INCREMENTAL {
            state::is_current_value(word, now)
        } else {
            state::is_value_of_batch(word)
        };
        // SAFETY: the acquire load saw the write that preceded the final state.
        current.then(|| unsafe { self.value_of(slot) })
    }

    /// The value of a slot whose state holds a value.
    ///
    /// # Safety
    /// The caller saw that state with acquire ordering (or has exclusive access, or
    /// owns the slot and saw it so before claiming it).
    #[inline]
    unsafe fn value_of<'t>(&'t self, slot: &'t Slot<Q>) -> &'t Q::Value {
        // SAFETY: forwarded: the value was written before the final state was published
        // and is never written again while shared.
        slot.value.with(|v| unsafe { (*v).assume_init_ref() })
    }

    #[cold]
    fn error_of(&self, slot: &Slot<Q>) -> QueryError {
        self.errors
            .lock()
            .get(&(slot as *const Slot<Q> as usize))
            .cloned()
            .expect("a failed slot has its error stored")
    }

    /// The value of `slot` if it holds an input (set with `Engine::set_input`): all a
    /// `recover` may read.
    pub(crate) fn input_value<'t>(&'t self, slot: &'t Slot<Q>) -> Option<&'t Q::Value> {
        // SAFETY: the acquire load saw the write that preceded the final state.
        state::is_input(slot.state.load(Ordering::Acquire)).then(|| unsafe { self.value_of(slot) })
    }

    /// The result of `slot`, which the caller knows is complete in revision `now` (it
    /// completed it, or waited for it).
    pub(crate) fn completed<'t>(
        &'t self,
        slot: &'t Slot<Q>,
        now: Revision,
    ) -> Result<&'t Q::Value, QueryError> {
        if let Some(value) = self.current_value::<true>(slot, now) {
            return Ok(value);
        }
        match self.read(slot, now) {
            Memo::Ready(result) => result,
            Memo::Running(_) | Memo::Stale(_) => unreachable!("a completed slot is current"),
        }
    }

    /// Takes a stale memo (state `previous`, see [`Memo::Stale`]) for refreshing:
    /// `false` if another requester changed the state first.
    pub(crate) fn claim_stale(&self, slot: &Slot<Q>, previous: usize, owner: usize) -> bool {
        if crate::sync::mutant("stale_claim_not_atomic") {
            // Deliberately broken (loom builds only): two requesters can both refresh.
            slot.state.store(owner, Ordering::Release);
            return true;
        }
        slot.state
            .compare_exchange(previous, owner, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The slot of `key`, or a new one whose key is a clone of `key` and whose state is
    /// `owner` (the claimer's address, or `INPUT` for [`MemoTable::set`]).
    ///
    /// User code runs here (`Eq` while probing, `Clone`, `Hash` while growing); if it
    /// panics the shard's lock is released by its guard and nothing has changed.
    /// `lane` is the claiming worker's index (see [`IdLanes`]).
    /// `miss` is where a lookup of `key` just missed ([`Miss::NONE`] if none).
    pub(crate) fn claim(
        &self,
        hash: u64,
        key: &Q::Key,
        owner: usize,
        lane: usize,
        miss: Miss,
    ) -> Claim<'_, Q> {
        if let Some(index_of) = Q::KEY_INDEX {
            return self.claim_dense(index_of(key), key, owner);
        }
        let shard_index = Self::shard_index(hash);
        let mut writer = self.writers[shard_index].0.lock();
        self.claim_locked(shard_index, &mut writer, hash, key, owner, lane, miss)
    }

    /// [`MemoTable::claim`] without the shard lock: the serial engine's claim.
    ///
    /// # Safety
    /// No other thread uses the table until this returns.
    pub(crate) unsafe fn claim_exclusive(
        &self,
        hash: u64,
        key: &Q::Key,
        owner: usize,
        miss: Miss,
    ) -> Claim<'_, Q> {
        if let Some(index_of) = Q::KEY_INDEX {
            return self.claim_dense(index_of(key), key, owner);
        }
        let shard_index = Self::shard_index(hash);
        // SAFETY: forwarded: no other thread uses the table, so none its shard locks.
        unsafe {
            self.writers[shard_index].0.with_exclusive(|writer| {
                self.claim_locked(shard_index, writer, hash, key, owner, 0, miss)
            })
        }
    }

    /// The claim, with the shard's writer state held.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn claim_locked(
        &self,
        shard_index: usize,
        writer: &mut ShardState,
        hash: u64,
        key: &Q::Key,
        owner: usize,
        lane: usize,
        miss: Miss,
    ) -> Claim<'_, Q> {
        let array = &self.arrays[shard_index];
        // Only this thread (holding the lock) replaces the array.
        let word = array.load(Ordering::Relaxed);
        // SAFETY: loaded from the shard.
        let buckets = unsafe { Buckets::of_word(word) };
        let mut free = None;
        // Buckets are only ever filled (under this lock), so if the array is the one
        // the lookup probed and the bucket where it stopped is still empty, every
        // bucket before it in `key`'s sequence is still full and `key` still absent.
        // (The mutant, loom builds only, trusts a bucket filled since.)
        if word != 0
            && word == miss.word
            && (buckets[miss.index].load(Ordering::Relaxed) == 0
                || crate::sync::mutant("claim_trusts_stale_miss"))
        {
            free = Some(miss.index);
        } else if !buckets.is_empty() {
            match self.probe(buckets, hash, key) {
                Ok(slot) => return Claim::Existing(slot),
                Err(index) => free = Some(index),
            }
        }
        let key = key.clone();
        let id = self.ids.next(lane);
        let slot = self.slots.ensure(id);
        let (buckets, free) = match free {
            Some(free) if (writer.len as usize + 1) * 4 <= buckets.len() * 3 => (buckets, free),
            _ => Self::grow(array, writer, buckets, hash),
        };
        let bucket = &buckets[free];
        let word = bucket_of(slot, hash);
        // Deliberately broken (loom builds only): the slot is reachable before its key
        // is written.
        let early = crate::sync::mutant("publish_before_key");
        if early {
            bucket.store(word, Ordering::Release);
        }
        // SAFETY: a fresh slot (ids are never reused) that no one else can reach before
        // its bucket is published below.
        unsafe {
            slot.id.with_mut(|i| *i = id);
            slot.key.with_mut(|k| (*k).write(key));
        }
        slot.state.store(owner, Ordering::Relaxed);
        if !early {
            bucket.store(word, Ordering::Release);
        }
        writer.len += 1;
        Claim::Claimed(slot)
    }

    /// Replaces the shard's array by one twice as large (or the first one), keeping the
    /// old one alive for readers; returns the new array and the free bucket for `hash`
    /// in it. Past `1 << TAG_BITS` buckets the keys are hashed again (user code: if it
    /// panics, the new array is freed and the shard is as it was).
    #[cold]
    fn grow<'s>(
        array: &'s AtomicU64,
        writer: &mut ShardState,
        current: &[AtomicU64],
        hash: u64,
    ) -> (&'s [AtomicU64], usize) {
        let grown = Buckets::new((current.len() * 2).max(INITIAL_BUCKETS));
        let word = grown.word();
        // SAFETY: the word of a live array (kept in `retired` or published below).
        let new_buckets = unsafe { Buckets::of_word(word) };
        let mask = new_buckets.len() - 1;
        let free_index = |hash_bits: usize| {
            let mut index = hash_bits & mask;
            while new_buckets[index].load(Ordering::Relaxed) != 0 {
                index = (index + 1) & mask;
            }
            index
        };
        let tags_place = new_buckets.len() as u64 <= 1 << TAG_BITS;
        for bucket in current {
            let bucket = bucket.load(Ordering::Relaxed);
            if bucket != 0 {
                let hash_bits = if tags_place {
                    bucket >> 48
                } else {
                    // SAFETY: a bucket of this table's (we hold its shard lock).
                    hash_key(unsafe { slot_of::<Q>(bucket) }.key())
                };
                new_buckets[free_index(hash_bits as usize)].store(bucket, Ordering::Relaxed);
            }
        }
        let free = free_index(hash as usize);
        let old = array.swap(word, Ordering::Release);
        if old != 0 {
            // SAFETY: the array just replaced, now owned by the shard's retired list.
            writer.retired.push(unsafe { Buckets::from_word(old) });
        }
        std::mem::forget(grown);
        (new_buckets, free)
    }

    /// Stores the result of `slot` (id `id`), which the caller owns, and returns the
    /// final state the caller then publishes (the parallel engine through the wait
    /// graph). `previous` is the state the caller claimed the slot from: `VACANT` for a
    /// new key, or a stale memo's state, whose result this one replaces (or keeps, if
    /// equal: see `revision.rs`). `record` is `None` in a batch engine.
    ///
    /// User code runs here (`Query::same`, the `Drop` of a replaced value); a panic in
    /// `same` is stored as the query's poison, one in `Drop` is swallowed: the slot is
    /// whole either way.
    ///
    /// # Safety
    /// The caller owns the running slot and stores its result once.
    pub(crate) unsafe fn finish(
        &self,
        id: u32,
        slot: &Slot<Q>,
        previous: usize,
        mut result: Result<Q::Value, QueryError>,
        record: Option<Record>,
    ) -> (usize, Stored) {
        let Some(Record { now, deps }) = record else {
            // SAFETY: forwarded (a batch engine only stores into new slots).
            return (unsafe { self.store_new(slot, result, 0) }, Stored::Changed);
        };
        // SAFETY: we own the slot.
        unsafe {
            self.meta
                .ensure(id)
                .set_deps(&self.dep_lists, deps.as_slice())
        };
        let mut kept = false;
        if previous != state::VACANT {
            // SAFETY: we own the slot, and `previous` (which we claimed it from) says
            // whether it holds a value.
            let old_value = state::has_value(previous).then(|| unsafe { self.value_of(slot) });
            let old_error = state::has_error(previous).then(|| self.error_of(slot));
            let old = match (old_value, &old_error) {
                (Some(value), _) => Ok(value),
                (None, Some(error)) => Err(error),
                (None, None) => unreachable!("a stale memo holds a value or an error"),
            };
            let same = crate::pool::catch(|| revision::unchanged(old, result.as_ref(), Q::same));
            kept = match same {
                Ok(same) => same,
                Err(payload) => {
                    result = Err(super::unwind::error_of_payload::<Q>(slot.key(), payload));
                    false
                }
            };
            if kept {
                drop_quietly(result);
                return (state::reverified(previous, now), Stored::Backdated);
            }
            if old_value.is_some() {
                // SAFETY: we own the slot and it holds a value, moved out here once.
                let old = slot.value.with_mut(|v| unsafe { (*v).assume_init_read() });
                drop_quietly(Ok::<_, QueryError>(old));
            } else {
                self.errors
                    .lock()
                    .remove(&(slot as *const Slot<Q> as usize));
            }
        }
        debug_assert!(!kept);
        // SAFETY: forwarded; the old result (if any) was removed above.
        (
            unsafe { self.store_new(slot, result, now) },
            Stored::Changed,
        )
    }

    /// Stores `result` into `slot`, which holds none; returns the final state of a
    /// result verified and changed in revision `now`.
    ///
    /// # Safety
    /// The caller owns the running slot, which holds no result.
    unsafe fn store_new(
        &self,
        slot: &Slot<Q>,
        result: Result<Q::Value, QueryError>,
        now: Revision,
    ) -> usize {
        match result {
            Ok(value) => {
                // SAFETY: forwarded.
                unsafe { Self::store_value(slot, value) };
                state::done(now, now)
            }
            Err(error) => {
                self.errors
                    .lock()
                    .insert(slot as *const Slot<Q> as usize, error);
                state::failed(now, now)
            }
        }
    }

    /// Stores a value into a new slot: a batch engine's common case, with nothing to
    /// match (its final state is then `state::done(0, 0)`).
    ///
    /// # Safety
    /// As for [`MemoTable::store_new`].
    #[inline]
    pub(crate) unsafe fn store_value(slot: &Slot<Q>, value: Q::Value) {
        // SAFETY: the owner is the only writer; readers wait for the final state.
        slot.value.with_mut(|v| unsafe { (*v).write(value) });
    }

    /// Sets `key`'s value as an input, replacing whatever the slot held; in an
    /// incremental engine (`changed_in` is the current revision) the input changed now.
    /// Returns `true` if the key had a slot before (a run may have read it).
    pub(crate) fn set(
        &mut self,
        hash: u64,
        key: Q::Key,
        value: Q::Value,
        changed_in: Option<Revision>,
    ) -> bool {
        let input = state::input(changed_in.unwrap_or(0));
        let (id, slot, old_value, existed) = match self.claim(hash, &key, input, 0, Miss::NONE) {
            Claim::Claimed(slot) => (slot.id(), slot, false, false),
            Claim::Existing(slot) => {
                let old = slot.state.load(Ordering::Relaxed);
                assert!(
                    !state::is_running(old),
                    "weft: an input was set while its query was in progress"
                );
                if state::has_error(old) {
                    self.errors
                        .lock()
                        .remove(&(slot as *const Slot<Q> as usize));
                }
                (slot.id(), slot, state::has_value(old), true)
            }
        };
        // SAFETY: `&mut self`: no one else can reach the slot. The old value (if any) is
        // moved out before the new one goes in, and dropped once the slot is whole
        // again, so a panicking `Drop` leaves nothing half-done.
        let old = slot.value.with_mut(|v| unsafe {
            let old = old_value.then(|| (*v).assume_init_read());
            (*v).write(value);
            old
        });
        slot.state.store(input, Ordering::Release);
        if changed_in.is_some() {
            // SAFETY: `&mut self`: exclusive; an input depends on nothing.
            unsafe { self.meta.ensure(id).set_deps(&self.dep_lists, &[]) };
        }
        drop(old);
        existed
    }
}

/// Drops a replaced or unneeded result; a panic in its `Drop` is swallowed (the memo is
/// already whole, and the old value belongs to no caller).
fn drop_quietly<V>(result: Result<V, QueryError>) {
    if let Err(payload) = crate::pool::catch(move || drop(result)) {
        crate::pool::drop_payload(payload);
    }
}

impl<Q: Query> Drop for MemoTable<Q> {
    fn drop(&mut self) {
        self.slots.for_each_mut(|slot| {
            let word = slot.state.load(Ordering::Relaxed);
            if word == state::VACANT {
                return;
            }
            // SAFETY: `&mut self`: exclusive. A claimed slot has its key; a `DONE` or
            // `INPUT` one its value. Each is dropped once, here.
            unsafe {
                slot.key.with_mut(|k| (*k).assume_init_drop());
                if state::has_value(word) {
                    slot.value.with_mut(|v| (*v).assume_init_drop());
                }
            }
        });
        for array in self.arrays.iter() {
            let word = array.load(Ordering::Relaxed);
            if word != 0 {
                // SAFETY: `&mut self`: the shard's current array, dropped once, here.
                drop(unsafe { Buckets::from_word(word) });
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::query::Cx;
    use std::hash::Hasher;

    /// A key whose `Hash` panics while `PANIC_ON_HASH` holds its value.
    #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
    struct Key(u32);

    std::thread_local! {
        static PANIC_ON_HASH: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
    }

    impl Hash for Key {
        fn hash<H: Hasher>(&self, state: &mut H) {
            if PANIC_ON_HASH.with(|p| p.get()) == Some(self.0) {
                panic!("hash of {} panics", self.0);
            }
            self.0.hash(state);
        }
    }

    struct Q;
    impl Query for Q {
        type Key = Key;
        type Value = u64;
        const NAME: &'static str = "q";
        fn compute(_: &Cx<'_>, key: &Key) -> u64 {
            u64::from(key.0)
        }
    }

    fn claim(table: &MemoTable<Q>, key: u32) -> Claim<'_, Q> {
        let key = Key(key);
        table.claim(hash_key(&key), &key, state::input(0), 0, Miss::NONE)
    }

    /// Far more keys than a tag can place (`TAG_BITS` is 3 here), so most growths hash
    /// the keys again; every key keeps its own slot and id.
    #[test]
    fn keys_stay_found_through_growth_past_the_tag_bits() {
        let table = MemoTable::<Q>::new(0);
        let mut ids = Vec::new();
        for k in 0..20_000u32 {
            match claim(&table, k) {
                Claim::Claimed(slot) => ids.push(slot.id()),
                Claim::Existing(..) => panic!("key {k} claimed twice"),
            }
        }
        for k in 0..20_000u32 {
            let slot = table.find(hash_key(&Key(k)), &Key(k)).expect("found");
            assert_eq!((slot.id(), slot.key()), (ids[k as usize], &Key(k)));
            assert!(matches!(claim(&table, k), Claim::Existing(s) if std::ptr::eq(s, slot)));
        }
        assert!(table.find(hash_key(&Key(20_000)), &Key(20_000)).is_none());
    }

    /// A `Hash` that panics while a shard grows leaves the shard as it was.
    #[test]
    fn a_hash_that_panics_during_growth_loses_no_key() {
        let table = MemoTable::<Q>::new(0);
        let mut claimed = Vec::new();
        let mut panicked = false;
        for k in 0..4_000u32 {
            // Key 7 panics whenever it is hashed again (by growths of its shard).
            PANIC_ON_HASH.with(|p| p.set(None));
            let hash = hash_key(&Key(k));
            PANIC_ON_HASH.with(|p| p.set(Some(7)));
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let claimed = table.claim(hash, &Key(k), state::input(0), 0, Miss::NONE);
                matches!(claimed, Claim::Claimed(_))
            }));
            match result {
                Ok(new) => {
                    assert!(new);
                    claimed.push(k);
                }
                Err(_) => panicked = true,
            }
        }
        PANIC_ON_HASH.with(|p| p.set(None));
        assert!(panicked, "some growth hashed key 7 again");
        for &k in &claimed {
            assert!(
                table.find(hash_key(&Key(k)), &Key(k)).is_some(),
                "key {k} lost"
            );
        }
    }
}
