//! A vector indexed by dense `u32` ids whose elements never move: memo slots live here,
//! so a `&Slot` (and a `&Value` handed to a caller) stays valid while the table grows.
//!
//! Page `p` holds `FIRST << p` elements, so 27 pages cover every `u32` id and finding
//! an element is a `leading_zeros`, a load and an index (salsa's `Table` and the
//! `boxcar` crate work the same way). A page is allocated, zeroed, by whoever first needs it; the loser
//! of a race to allocate it frees its copy. Zeroed memory is untouched memory, so the
//! unused tail of the newest page costs address space, not resident memory.

use crate::sync::atomic::{AtomicPtr, Ordering};

/// Elements in page 0 (small, so that a query type with few keys costs little).
const FIRST_BITS: u32 = if cfg!(loom) { 1 } else { 6 };
const FIRST: u64 = 1 << FIRST_BITS;
/// Enough pages for every `u32` id (loom models hold a handful of keys, and every
/// atomic counts in their state space: 510 ids there).
const PAGES: usize = if cfg!(loom) {
    8
} else {
    33 - FIRST_BITS as usize
};

/// Elements of type `T`, valid when all-zero (see [`Pages::new`]).
pub(crate) struct Pages<T> {
    /// Each page's first element (as `*mut T`), or null. Stored untyped so that an
    /// [`ErasedPages`] can read them for any `T`.
    pages: [AtomicPtr<()>; PAGES],
    make: fn() -> T,
}

/// Where the elements of some `Pages<T>` live, with `T` erased: enough to find an
/// element's address (the memo slots of any query type, for a dependency check that
/// only reads their state words).
#[derive(Clone, Copy)]
pub(crate) struct ErasedPages {
    pages: *const [AtomicPtr<()>; PAGES],
    size: usize,
}

impl ErasedPages {
    /// The address of element `id`, or null if its page is not visible.
    ///
    /// # Safety
    /// The `Pages` this view was made from is alive.
    #[inline]
    pub(crate) unsafe fn try_get(self, id: u32) -> *const u8 {
        let (page, offset, _) = locate(id);
        // SAFETY: the caller's precondition.
        let base = unsafe { &*self.pages }[page].load(Ordering::Acquire) as *const u8;
        if base.is_null() {
            return base;
        }
        // SAFETY: the page holds `len > offset` elements of `size` bytes.
        unsafe { base.add(offset * self.size) }
    }
}

/// Where element `id` lives: (page, offset in the page, page length).
#[inline]
pub(crate) fn locate(id: u32) -> (usize, usize, usize) {
    let x = u64::from(id) + FIRST;
    let page = (63 - x.leading_zeros() - FIRST_BITS) as usize;
    let len = FIRST << page;
    (page, (x - len) as usize, len as usize)
}

impl<T> Pages<T> {
    /// An empty vector whose elements start as `make()`.
    ///
    /// # Safety
    /// `make()` must be all-zero bytes, and `T` not zero-sized (see
    /// [`crate::sync::zeroed_slice`]).
    pub(crate) unsafe fn new(make: fn() -> T) -> Self {
        Pages {
            pages: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            make,
        }
    }

    /// Element `id`, which must have been made reachable by [`Pages::ensure`] on a path
    /// that happens-before this call (a slot is published after its page).
    #[inline]
    pub(crate) fn get(&self, id: u32) -> &T {
        let (page, offset, _) = locate(id);
        let base = self.pages[page].load(Ordering::Acquire) as *mut T;
        debug_assert!(!base.is_null(), "page of id {id} is allocated");
        // SAFETY: the page exists (caller's precondition) and holds `len > offset`
        // elements, which live as long as `self`.
        unsafe { &*base.add(offset) }
    }

    /// A view of these pages that does not name `T`.
    pub(crate) fn erased(&self) -> ErasedPages {
        ErasedPages {
            pages: &self.pages,
            size: std::mem::size_of::<T>(),
        }
    }

    /// Element `id`, if its page exists (as this thread sees it).
    #[inline]
    pub(crate) fn try_get(&self, id: u32) -> Option<&T> {
        // SAFETY: a non-null element pointer is into a page that lives as long as `self`.
        unsafe { self.try_get_ptr(id).as_ref() }
    }

    /// [`Pages::try_get`] as a pointer that may reach the rest of the element's page
    /// (null if the page is not visible).
    #[inline]
    pub(crate) fn try_get_ptr(&self, id: u32) -> *const T {
        let (page, offset, _) = locate(id);
        let base = self.pages[page].load(Ordering::Acquire) as *mut T;
        if base.is_null() {
            return base;
        }
        // SAFETY: the page holds `len > offset` elements.
        unsafe { base.add(offset) }
    }

    /// Element `id`, allocating its page if needed.
    pub(crate) fn ensure(&self, id: u32) -> &T {
        // SAFETY: the element exists and lives as long as `self`.
        unsafe { &*self.ensure_ptr(id) }
    }

    /// [`Pages::ensure`] as a pointer that may reach the rest of the element's page.
    pub(crate) fn ensure_ptr(&self, id: u32) -> *const T {
        let (page, offset, len) = locate(id);
        let mut base = self.pages[page].load(Ordering::Acquire) as *mut T;
        if base.is_null() {
            base = self.allocate(page, len);
        }
        // SAFETY: the page holds `len > offset` elements.
        unsafe { base.add(offset) }
    }

    #[cold]
    fn allocate(&self, page: usize, len: usize) -> *mut T {
        // SAFETY: `new`'s contract: zero is `make()` and `T` is not zero-sized.
        let fresh = unsafe { crate::sync::zeroed_slice(len, self.make) };
        let fresh = Box::into_raw(fresh) as *mut T;
        match self.pages[page].compare_exchange(
            std::ptr::null_mut(),
            fresh as *mut (),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(winner) => {
                // SAFETY: ours was never published; it came from `Box::into_raw`.
                drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(fresh, len)) });
                winner as *mut T
            }
        }
    }

    /// Every element of every allocated page, for the owner's `Drop` (exclusive access).
    pub(crate) fn for_each_mut(&mut self, mut f: impl FnMut(&mut T)) {
        for (page, ptr) in self.pages.iter().enumerate() {
            let base = ptr.load(Ordering::Relaxed) as *mut T;
            if base.is_null() {
                continue;
            }
            let len = (FIRST << page) as usize;
            // SAFETY: an allocated page of `len` elements, and `&mut self` is exclusive.
            let elements = unsafe { std::slice::from_raw_parts_mut(base, len) };
            elements.iter_mut().for_each(&mut f);
        }
    }
}

impl<T> Drop for Pages<T> {
    fn drop(&mut self) {
        for (page, ptr) in self.pages.iter().enumerate() {
            let base = ptr.load(Ordering::Relaxed) as *mut T;
            if !base.is_null() {
                let len = (FIRST << page) as usize;
                // SAFETY: made by `Box::into_raw` of a `len`-element slice, freed once.
                drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(base, len)) });
            }
        }
    }
}

// SAFETY: `Pages` owns its elements; sharing it shares `&T`s.
unsafe impl<T: Send> Send for Pages<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Pages<T> {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_distinct_stable_elements_across_pages() {
        assert_eq!(locate(0), (0, 0, FIRST as usize));
        assert_eq!(
            locate(FIRST as u32 - 1),
            (0, FIRST as usize - 1, FIRST as usize)
        );
        assert_eq!(locate(FIRST as u32), (1, 0, 2 * FIRST as usize));
        assert_eq!(locate(u32::MAX).0, PAGES - 1);
        // SAFETY: zero is `0u64`.
        let pages = unsafe { Pages::<u64>::new(|| 0) };
        let ids = [0, 1, 63, 64, 191, 192, 100_000];
        let addrs: Vec<*const u64> = ids.iter().map(|&id| pages.ensure(id) as *const _).collect();
        for (id, addr) in ids.iter().zip(&addrs) {
            assert_eq!(pages.get(*id) as *const u64, *addr);
            assert_eq!(*pages.get(*id), 0);
        }
        let mut sorted = addrs.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }
}
