//! Values that count their live instances, so a test can see every key and value an
//! engine holds dropped exactly once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The live `Counted` instances, by (kind, id).
pub type Live = Arc<Mutex<HashSet<(char, u32)>>>;

/// Counts live instances, so a test can see every key and value dropped once.
pub struct Counted {
    pub id: u32,
    live: Live,
    pub kind: char,
}

impl Counted {
    pub fn new(kind: char, id: u32, live: &Live) -> Self {
        assert!(
            live.lock().unwrap().insert((kind, id)),
            "{kind}{id} made twice"
        );
        Counted {
            id,
            live: live.clone(),
            kind,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        assert!(
            self.live.lock().unwrap().remove(&(self.kind, self.id)),
            "{}{} dropped twice",
            self.kind,
            self.id
        );
    }
}

static LIVE: std::sync::OnceLock<Live> = std::sync::OnceLock::new();
pub fn live() -> &'static Live {
    LIVE.get_or_init(Default::default)
}

/// A key whose clones are tracked too (the `Counted` is there to be dropped).
pub struct TrackedKey(pub u32, #[allow(dead_code)] pub Counted);
static CLONES: AtomicUsize = AtomicUsize::new(0);
impl Clone for TrackedKey {
    fn clone(&self) -> Self {
        let n = CLONES.fetch_add(1, Ordering::Relaxed) as u32;
        TrackedKey(self.0, Counted::new('c', n, live()))
    }
}
impl PartialEq for TrackedKey {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for TrackedKey {}
impl std::hash::Hash for TrackedKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}
impl PartialOrd for TrackedKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TrackedKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}
impl std::fmt::Debug for TrackedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
