//! What an unwind may and may not do inside the pool.
//!
//! User code can panic anywhere. Three tools keep that from corrupting the pool:
//!
//! - [`catch`] turns a panic into a value where the pool must carry on (every job body,
//!   every user hook);
//! - [`drop_payload`] drops a panic payload that nobody will re-raise, even if the
//!   payload's own `Drop` panics (it would otherwise escape into a worker's loop);
//! - [`AbortIfPanic`] guards the windows in which a stack frame has published a job or
//!   latch that another thread may still touch: unwinding out of such a frame would
//!   free memory that thread uses, so the process aborts instead. Nothing in those
//!   windows is expected to unwind (user code there runs under `catch`); the guard
//!   turns a bug into a loud stop rather than memory corruption.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use crate::sync::Mutex;

/// Runs `f`, turning a panic into an `Err` with its payload.
#[inline]
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Box<dyn Any + Send>> {
    panic::catch_unwind(AssertUnwindSafe(f))
}

/// Drops a panic payload nobody re-raises. If its `Drop` panics, that second payload
/// is leaked rather than dropped (its `Drop` could panic again).
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(second) = catch(move || drop(payload)) {
        std::mem::forget(second);
    }
}

/// The first of several panics by an order of the caller's (leftmost item, first in
/// spawn order): later ones are dropped safely. Shared by threads, so behind a lock.
pub(crate) struct FirstPanic<K: Ord> {
    kept: Mutex<Option<(K, Box<dyn Any + Send>)>>,
}

impl<K: Ord> FirstPanic<K> {
    pub(crate) fn new() -> Self {
        FirstPanic {
            kept: Mutex::new(None),
        }
    }

    /// Keeps `payload` if `at` sorts before the panic kept so far.
    pub(crate) fn offer(&self, at: K, payload: Box<dyn Any + Send>) {
        let mut kept = self.kept.lock();
        let loser = match &*kept {
            Some((first, _)) if *first <= at => Some(payload),
            _ => kept.replace((at, payload)).map(|(_, p)| p),
        };
        drop(kept);
        if let Some(loser) = loser {
            drop_payload(loser);
        }
    }

    /// The panic kept, if any.
    pub(crate) fn take(&self) -> Option<Box<dyn Any + Send>> {
        self.kept.lock().take().map(|(_, p)| p)
    }
}

/// The message of a panic payload (`&str` or `String`), else a placeholder.
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Aborts the process if dropped while unwinding (see the module docs). Disarm it with
/// [`AbortIfPanic::disarm`] when the window closes.
pub(crate) struct AbortIfPanic(pub(crate) &'static str);

impl AbortIfPanic {
    /// Closes the window: dropping the guard is now harmless.
    #[inline]
    pub(crate) fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for AbortIfPanic {
    fn drop(&mut self) {
        eprintln!(
            "weft: unwinding out of {} while another thread may use its frame; aborting",
            self.0
        );
        std::process::abort();
    }
}
