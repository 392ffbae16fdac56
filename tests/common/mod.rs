//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod counted;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use weft::query::{Cx, Engine, QueryError};
use weft::{ThreadPool, ThreadPoolBuilder};

/// Runs `f` on its own thread; fails the test if it does not finish in `secs` seconds,
/// so a hang becomes a failure instead of a stalled run.
pub fn watchdog<R: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(f));
        let _ = tx.send(outcome);
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("{what}: hung for {secs} s"),
    }
}

/// A pool of `n` threads.
pub fn pool(n: usize) -> ThreadPool {
    ThreadPoolBuilder::new().num_threads(n).build().unwrap()
}

/// An engine to test and the pool it runs on: the serial engine (no pool), then the
/// parallel one on a pool of each of `threads`.
pub fn engines(threads: &[usize]) -> Vec<(String, Option<ThreadPool>, Engine)> {
    let mut all = vec![("serial".to_string(), None, Engine::serial())];
    for &n in threads {
        all.push((format!("{n} thread(s)"), Some(pool(n)), Engine::new()));
    }
    all
}

/// `engine.run(f)`, inside `pool` if there is one.
pub fn run_on<R: Send>(
    pool: &Option<ThreadPool>,
    engine: &Engine,
    f: impl FnOnce(&Cx<'_>) -> R + Send,
) -> Result<R, QueryError> {
    match pool {
        Some(pool) => pool.install(|| engine.run(f)),
        None => engine.run(f),
    }
}

/// A key naming node `node` of a generated graph `spec` (the differential tests'
/// keys). One engine only ever sees one spec, so keys compare, hash and print by node.
pub struct NodeKey<S> {
    pub spec: std::sync::Arc<S>,
    pub node: u32,
}

impl<S> Clone for NodeKey<S> {
    fn clone(&self) -> Self {
        NodeKey {
            spec: self.spec.clone(),
            node: self.node,
        }
    }
}
impl<S> PartialEq for NodeKey<S> {
    fn eq(&self, o: &Self) -> bool {
        self.node == o.node
    }
}
impl<S> Eq for NodeKey<S> {}
impl<S> std::hash::Hash for NodeKey<S> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.node.hash(h)
    }
}
impl<S> PartialOrd for NodeKey<S> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<S> Ord for NodeKey<S> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.node.cmp(&o.node)
    }
}
impl<S> std::fmt::Debug for NodeKey<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.node)
    }
}

/// splitmix64: a tiny deterministic generator for the generated tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True one time in `one_in`.
    pub fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// How a generated node requests its dependencies.
#[derive(Clone, Copy, Debug)]
pub enum Calls {
    Sequential,
    ParMap,
    Join,
}

impl Calls {
    /// One of the three, at random.
    pub fn random(rng: &mut Rng) -> Calls {
        match rng.below(3) {
            0 => Calls::Sequential,
            1 => Calls::ParMap,
            _ => Calls::Join,
        }
    }

    /// `one` over `keys` in this style (results in key order).
    pub fn request<K: Sync>(
        self,
        cx: &Cx<'_>,
        keys: &[K],
        one: impl Fn(&Cx<'_>, &K) -> u64 + Sync,
    ) -> Vec<u64> {
        match self {
            Calls::Sequential => keys.iter().map(|k| one(cx, k)).collect(),
            Calls::ParMap => cx.par_map(keys, |cx, k| one(cx, k)),
            Calls::Join => {
                let (l, r) = keys.split_at(keys.len() / 2);
                let (l, r) = cx.join(
                    |cx| l.iter().map(|k| one(cx, k)).collect::<Vec<_>>(),
                    |cx| r.iter().map(|k| one(cx, k)).collect::<Vec<_>>(),
                );
                l.into_iter().chain(r).collect()
            }
        }
    }
}
