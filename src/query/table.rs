//! The memo table of one query type: key -> entry, with a lock-free hit path.
//!
//! The table is split in shards by the key's hash. A shard is an open-addressing array
//! of entry pointers. Readers take no lock and write nothing shared: they pin the
//! epoch (a thread-local write), load the shard's current array and probe it. Writers
//! (a claim of a new key) take the shard's mutex, probe again, and insert; when the
//! array is half full they copy it to one twice the size, publish that, and retire the
//! old array through `crossbeam-epoch`, which frees it once no reader can hold it.
//!
//! Entries are boxed and never move or die before the table: a `&Entry` handed out
//! stays valid for the table's lifetime, which is what lets a waiter keep pointing at
//! an entry while it blocks.
//!
//! Under `cfg(loom)` the same interface is served by a locked map (crossbeam-epoch does
//! not run under loom); the models check the entry protocol, not the hash table.

use std::hash::{BuildHasher, Hash};

use super::error::QueryError;
use super::graph::EntrySync;
use super::job::QueryJob;
use super::Query;
use crate::sync::UnsafeCell;

/// One memoized `(Q, key)`.
pub(crate) struct Entry<Q: Query> {
    #[cfg_attr(loom, allow(dead_code))]
    hash: u64,
    pub(crate) key: Q::Key,
    pub(crate) sync: EntrySync,
    /// Written once by the owner before `sync` turns `DONE`; read only after that.
    value: UnsafeCell<Option<Result<Q::Value, QueryError>>>,
}

impl<Q: Query> Entry<Q> {
    fn new(
        hash: u64,
        key: Q::Key,
        sync: EntrySync,
        value: Option<Result<Q::Value, QueryError>>,
    ) -> Self {
        Entry {
            hash,
            key,
            sync,
            value: UnsafeCell::new(value),
        }
    }

    /// The stored result, if the entry is complete.
    #[inline]
    pub(crate) fn result(&self) -> Option<&Result<Q::Value, QueryError>> {
        if !self.sync.is_done() {
            return None;
        }
        // SAFETY: `is_done` (acquire) saw the owner's release after its write; nobody
        // writes the value again.
        self.value.with(|v| unsafe { (*v).as_ref() })
    }

    /// Stores the result; the owner then completes the entry through the wait graph.
    ///
    /// # Safety
    /// Only the owning job calls this, once, before completing the entry.
    pub(crate) unsafe fn store(&self, result: Result<Q::Value, QueryError>) {
        // SAFETY: the caller is the only writer, and readers wait for `DONE`.
        self.value.with_mut(|v| unsafe { *v = Some(result) });
    }
}

/// The outcome of [`MemoTable::get_or_claim`].
pub(crate) enum Claim<'t, Q: Query> {
    /// The entry existed (complete or in progress).
    Existing(&'t Entry<Q>),
    /// A new entry, now owned by the caller's job.
    Claimed(&'t Entry<Q>),
}

/// Hash used for keys: fast, and good enough with the final mix below.
pub(crate) fn hash_key<K: Hash>(key: &K) -> u64 {
    let h = rustc_hash::FxBuildHasher.hash_one(key);
    // Fold high bits down so that both shard and bucket indices see all of them.
    h ^ (h >> 29) ^ (h >> 47)
}

/// Keeps this thread pinned in the epoch while a query frame (a `Cx`) is alive, so the
/// pin inside each hit is nested: a thread-local increment, not a fence. It delays the
/// freeing of retired bucket arrays (only) until the frame ends.
#[cfg(not(loom))]
pub(crate) type FrameGuard = crossbeam_epoch::Guard;
#[cfg(loom)]
pub(crate) type FrameGuard = ();

#[cfg(not(loom))]
pub(crate) fn pin_frame() -> FrameGuard {
    crossbeam_epoch::pin()
}
#[cfg(loom)]
pub(crate) fn pin_frame() -> FrameGuard {}

#[cfg(not(loom))]
pub(crate) use lock_free::MemoTable;
#[cfg(loom)]
pub(crate) use locked::MemoTable;

#[cfg(not(loom))]
mod lock_free {
    use crossbeam_epoch::{self as epoch, Atomic, Owned};

    use super::*;
    use crate::sync::atomic::{AtomicPtr, Ordering};
    use crate::sync::Mutex;

    const SHARDS: usize = 64;
    const INITIAL_BUCKETS: usize = 16;

    pub(crate) struct MemoTable<Q: Query> {
        shards: Box<[Shard<Q>]>,
    }

    struct Shard<Q: Query> {
        /// Number of entries; held while inserting.
        insert: Mutex<usize>,
        buckets: Atomic<Buckets<Q>>,
    }

    struct Buckets<Q: Query> {
        slots: Box<[AtomicPtr<Entry<Q>>]>,
    }

    impl<Q: Query> Buckets<Q> {
        fn with_capacity(capacity: usize) -> Self {
            Buckets {
                slots: (0..capacity)
                    .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                    .collect(),
            }
        }

        /// The entry for `key`, or the index of the empty slot where it would go.
        /// Entries live as long as the table, not just the array: hence a raw pointer.
        #[inline]
        fn probe(&self, hash: u64, key: &Q::Key) -> Result<*const Entry<Q>, usize> {
            let mask = self.slots.len() - 1;
            let mut index = hash as usize & mask;
            loop {
                let ptr = self.slots[index].load(Ordering::Acquire);
                // SAFETY: non-null slots point to boxed entries that live as long as the
                // table; the acquire load saw their initialisation.
                match unsafe { ptr.as_ref() } {
                    None => return Err(index),
                    Some(entry) if entry.hash == hash && entry.key == *key => return Ok(ptr),
                    Some(_) => index = (index + 1) & mask,
                }
            }
        }
    }

    impl<Q: Query> MemoTable<Q> {
        pub(crate) fn new() -> Self {
            MemoTable {
                shards: (0..SHARDS)
                    .map(|_| Shard {
                        insert: Mutex::new(0),
                        buckets: Atomic::new(Buckets::with_capacity(INITIAL_BUCKETS)),
                    })
                    .collect(),
            }
        }

        #[inline]
        fn shard(&self, hash: u64) -> &Shard<Q> {
            &self.shards[(hash >> 58) as usize % SHARDS]
        }

        /// The entry for `key`, if any. Takes no lock and writes no shared memory.
        #[inline]
        pub(crate) fn get(&self, hash: u64, key: &Q::Key) -> Option<&Entry<Q>> {
            let guard = epoch::pin();
            let buckets = self.shard(hash).buckets.load(Ordering::Acquire, &guard);
            // SAFETY: the array is retired only through the epoch, and we are pinned.
            let buckets = unsafe { buckets.deref() };
            // SAFETY: entries live as long as the table, beyond the guard.
            buckets.probe(hash, key).ok().map(|e| unsafe { &*e })
        }

        /// The entry for `key`, or a new one claimed by `owner`.
        pub(crate) fn get_or_claim(
            &self,
            hash: u64,
            key: &Q::Key,
            owner: &QueryJob,
        ) -> Claim<'_, Q> {
            self.insert_with(hash, key, || EntrySync::running(owner), None)
        }

        /// Stores a finished value for `key` (an input), replacing any earlier one.
        pub(crate) fn set(&mut self, hash: u64, key: Q::Key, value: Q::Value) {
            let guard = epoch::pin();
            let buckets = self.shard(hash).buckets.load(Ordering::Acquire, &guard);
            // SAFETY: pinned, as in `get`.
            let buckets = unsafe { buckets.deref() };
            if let Ok(entry) = buckets.probe(hash, &key) {
                let ptr = entry as *mut Entry<Q>;
                // SAFETY: `&mut self` means no other reference to any entry is in use.
                unsafe { *ptr = Entry::new(hash, key, EntrySync::done(), Some(Ok(value))) };
                return;
            }
            drop(guard);
            let claim = self.insert_with(hash, &key, EntrySync::done, Some(Ok(value)));
            debug_assert!(matches!(claim, Claim::Claimed(_)));
        }

        fn insert_with(
            &self,
            hash: u64,
            key: &Q::Key,
            sync: impl FnOnce() -> EntrySync,
            value: Option<Result<Q::Value, QueryError>>,
        ) -> Claim<'_, Q> {
            let shard = self.shard(hash);
            let mut len = shard.insert.lock();
            let guard = epoch::pin();
            let current = shard.buckets.load(Ordering::Acquire, &guard);
            // SAFETY: pinned; only this thread (holding the lock) replaces the array.
            let mut buckets = unsafe { current.deref() };
            let slot = match buckets.probe(hash, key) {
                // SAFETY: entries live as long as the table.
                Ok(entry) => return Claim::Existing(unsafe { &*entry }),
                Err(slot) => slot,
            };
            let entry = Box::into_raw(Box::new(Entry::new(hash, key.clone(), sync(), value)));
            let mut slot = slot;
            if (*len + 1) * 2 > buckets.slots.len() {
                let grown = Buckets::with_capacity(buckets.slots.len() * 2);
                for old in buckets.slots.iter() {
                    let ptr = old.load(Ordering::Relaxed);
                    // SAFETY: entries live as long as the table.
                    if let Some(e) = unsafe { ptr.as_ref() } {
                        let Err(free) = grown.probe(e.hash, &e.key) else {
                            unreachable!("keys are unique");
                        };
                        grown.slots[free].store(ptr, Ordering::Relaxed);
                    }
                }
                let grown = Owned::new(grown).into_shared(&guard);
                shard.buckets.store(grown, Ordering::Release);
                // SAFETY: the old array is unreachable for new readers; the epoch frees
                // it after every reader pinned before this point has unpinned.
                unsafe { guard.defer_destroy(current) };
                // SAFETY: just published, and pinned.
                buckets = unsafe { grown.deref() };
                // SAFETY: as above, the entry is live.
                let Err(free) = buckets.probe(hash, unsafe { &(*entry).key }) else {
                    unreachable!("the key is new");
                };
                slot = free;
            }
            buckets.slots[slot].store(entry, Ordering::Release);
            *len += 1;
            // SAFETY: the entry was just boxed and lives as long as the table.
            Claim::Claimed(unsafe { &*entry })
        }
    }

    impl<Q: Query> Drop for MemoTable<Q> {
        fn drop(&mut self) {
            for shard in self.shards.iter() {
                // SAFETY: `&mut self`: no reader can be pinned on this table any more.
                let guard = unsafe { epoch::unprotected() };
                let buckets = shard
                    .buckets
                    .swap(epoch::Shared::null(), Ordering::Relaxed, guard);
                // SAFETY: as above; we own the array and every entry in it.
                unsafe {
                    for slot in buckets.deref().slots.iter() {
                        let ptr = slot.load(Ordering::Relaxed);
                        if !ptr.is_null() {
                            drop(Box::from_raw(ptr));
                        }
                    }
                    drop(buckets.into_owned());
                }
            }
        }
    }
}

#[cfg(loom)]
mod locked {
    use super::*;
    use crate::sync::Mutex;

    /// Loom builds: a locked list of boxed entries (tiny tables in models).
    pub(crate) struct MemoTable<Q: Query> {
        entries: Mutex<Vec<Box<Entry<Q>>>>,
    }

    impl<Q: Query> MemoTable<Q> {
        pub(crate) fn new() -> Self {
            MemoTable {
                entries: Mutex::new(Vec::new()),
            }
        }

        fn find(entries: &[Box<Entry<Q>>], key: &Q::Key) -> Option<*const Entry<Q>> {
            entries
                .iter()
                .find(|e| e.key == *key)
                .map(|e| &**e as *const _)
        }

        pub(crate) fn get(&self, _hash: u64, key: &Q::Key) -> Option<&Entry<Q>> {
            // SAFETY: boxed entries never move or die before the table.
            Self::find(&self.entries.lock(), key).map(|e| unsafe { &*e })
        }

        pub(crate) fn get_or_claim(
            &self,
            hash: u64,
            key: &Q::Key,
            owner: &QueryJob,
        ) -> Claim<'_, Q> {
            let mut entries = self.entries.lock();
            if let Some(e) = Self::find(&entries, key) {
                // SAFETY: as in `get`.
                return Claim::Existing(unsafe { &*e });
            }
            entries.push(Box::new(Entry::new(
                hash,
                key.clone(),
                EntrySync::running(owner),
                None,
            )));
            let e: *const Entry<Q> = &**entries.last().expect("just pushed");
            // SAFETY: as in `get`.
            Claim::Claimed(unsafe { &*e })
        }

        pub(crate) fn set(&mut self, hash: u64, key: Q::Key, value: Q::Value) {
            let mut entries = self.entries.lock();
            entries.retain(|e| e.key != key);
            entries.push(Box::new(Entry::new(
                hash,
                key,
                EntrySync::done(),
                Some(Ok(value)),
            )));
        }
    }
}
