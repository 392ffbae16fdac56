//! Differential test of incremental engines: random query graphs whose shape, values,
//! cycles and panics are driven by inputs, and random edit scripts over them. After
//! every edit, each incremental engine (serial, and parallel at 1, 2, 4 and 8 threads)
//! kept since the first run must give exactly what a fresh batch engine computes from
//! the current inputs: every value, every error, every cycle report.
//!
//! CI runs a short share; `WEFT_INCR_SCRIPTS=1000 cargo test --release --test
//! incremental_differential` runs the long mode.

mod common;

use common::{Calls, NodeKey, Rng};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use weft::query::{Cx, Cycle, Engine, Input, Query};
use weft::{ThreadPool, ThreadPoolBuilder};

#[derive(Debug)]
struct NodeSpec {
    /// Forward dependencies an input mask selects from (acyclic nodes), or the next
    /// member of the node's ring.
    candidates: Vec<u32>,
    /// The ring this node belongs to, and whether it is the member whose edge back to
    /// the start an input opens and closes.
    ring: Option<(u32, bool)>,
    calls: Calls,
    /// `try_get` (errors become a number) rather than `get` (errors propagate).
    tolerant: bool,
    /// Panics when its salt is 3 modulo 11.
    fragile: bool,
    recovers: bool,
    /// Keeps only its value modulo 3: re-executions often give the same value, so
    /// early cutoff happens.
    coarse: bool,
}

struct Spec {
    nodes: Vec<NodeSpec>,
    rings: u32,
}

/// Salt mixed into a node's value (an unset salt counts as an error text).
struct Salt;
impl Input for Salt {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "salt";
}

/// Which of a node's candidate dependencies it requests (unset: all).
struct Mask;
impl Input for Mask {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "mask";
}

/// Whether a ring's last edge is there (a cycle) or not (a chain).
struct RingClosed;
impl Input for RingClosed {
    type Key = u32;
    type Value = bool;
    const NAME: &'static str = "ring_closed";
}

/// What a recovering ring member reads in `recover` (unset: 7).
struct Fallback;
impl Input for Fallback {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "fallback";
}

type Key = NodeKey<Spec>;

struct Node;
impl Query for Node {
    type Key = Key;
    type Value = u64;
    const NAME: &'static str = "node";
    fn compute(cx: &Cx<'_>, key: &Key) -> u64 {
        let spec = &key.spec.nodes[key.node as usize];
        // A fragile node lets an unset salt's error propagate.
        let salt = if spec.fragile {
            cx.get::<Salt>(&key.node)
        } else {
            match cx.try_get::<Salt>(&key.node) {
                Ok(salt) => salt,
                Err(error) => 1000 + error.to_string().len() as u64,
            }
        };
        if spec.fragile && salt % 11 == 3 {
            panic!("node {} panics on salt {salt}", key.node);
        }
        let deps: Vec<u32> = match spec.ring {
            Some((ring, true)) if !cx.get::<RingClosed>(&ring) => Vec::new(),
            Some(_) => spec.candidates.clone(),
            None => {
                let mask = cx.try_get::<Mask>(&key.node).unwrap_or(u64::MAX);
                (spec.candidates.iter().enumerate())
                    .filter(|(i, _)| mask >> i & 1 == 1)
                    .map(|(_, &c)| c)
                    .collect()
            }
        };
        let keys: Vec<Key> = deps
            .iter()
            .map(|&node| Key {
                spec: key.spec.clone(),
                node,
            })
            .collect();
        let one = |cx: &Cx<'_>, k: &Key| -> u64 {
            if spec.tolerant {
                cx.try_get::<Node>(k)
                    .unwrap_or_else(|e| e.to_string().len() as u64)
            } else {
                cx.get::<Node>(k)
            }
        };
        let values = spec.calls.request(cx, &keys, one);
        let value = values
            .iter()
            .fold((key.node as u64 * 1_000_003) ^ salt, |acc, v| {
                acc.wrapping_mul(31).wrapping_add(*v)
            });
        if spec.coarse {
            value % 3
        } else {
            value
        }
    }
    fn recover(cx: &Cx<'_>, key: &Key, cycle: &Cycle) -> Option<u64> {
        let spec = &key.spec.nodes[key.node as usize];
        let (ring, _) = spec.ring?;
        let fallback = cx.try_get::<Fallback>(&ring).unwrap_or(7);
        spec.recovers
            .then(|| fallback + cycle.participants().len() as u64)
    }
    fn same(old: &u64, new: &u64) -> bool {
        old == new
    }
}

/// A graph of `size` nodes: a few disjoint rings (cycles while closed; members depend
/// only on the next member, so cycles never share participants and their reports do
/// not depend on timing), and acyclic nodes with forward candidates (or ring members).
fn random_spec(rng: &mut Rng, size: u32) -> Spec {
    let mut nodes: Vec<NodeSpec> = (0..size)
        .map(|_| NodeSpec {
            candidates: Vec::new(),
            ring: None,
            calls: Calls::Sequential,
            tolerant: false,
            fragile: false,
            recovers: false,
            coarse: false,
        })
        .collect();
    let mut rings = 0;
    for _ in 0..1 + rng.below(3) {
        let len = 1 + rng.below(4) as usize;
        let start = rng.below(size as u64) as usize;
        let members: Vec<usize> = (start..start + len)
            .filter(|&i| i < size as usize)
            .collect();
        if members.iter().any(|&i| nodes[i].ring.is_some()) {
            continue;
        }
        for (pos, &i) in members.iter().enumerate() {
            let last = pos + 1 == members.len();
            nodes[i].ring = Some((rings, last));
            nodes[i].candidates = vec![members[(pos + 1) % members.len()] as u32];
            nodes[i].calls = Calls::random(rng);
            nodes[i].recovers = rng.chance(2);
            nodes[i].tolerant = rng.chance(2);
            nodes[i].fragile = rng.chance(4);
        }
        rings += 1;
    }
    for i in 0..size as usize {
        if nodes[i].ring.is_some() {
            continue;
        }
        for _ in 0..rng.below(5) {
            let j = i as u64 + 1 + rng.below(size as u64);
            if j < size as u64 {
                nodes[i].candidates.push(j as u32);
            } else if let Some(c) =
                (0..size as usize).find(|&c| nodes[c].ring.is_some() && rng.chance(3))
            {
                nodes[i].candidates.push(c as u32);
            }
        }
        nodes[i].calls = Calls::random(rng);
        nodes[i].tolerant = !rng.chance(3);
        nodes[i].fragile = rng.chance(8);
        nodes[i].coarse = rng.chance(3);
    }
    Spec { nodes, rings }
}

/// One input change.
#[derive(Clone, Copy, Debug)]
enum Edit {
    Salt(u32, u64),
    Mask(u32, u64),
    Ring(u32, bool),
    Fallback(u32, u64),
}

impl Edit {
    fn random(rng: &mut Rng, spec: &Spec) -> Edit {
        let size = spec.nodes.len() as u64;
        match rng.below(10) {
            0..=4 => Edit::Salt(rng.below(size) as u32, rng.below(40)),
            5..=6 => Edit::Mask(rng.below(size) as u32, rng.next()),
            7..=8 => Edit::Ring(rng.below(spec.rings as u64) as u32, rng.chance(2)),
            _ => Edit::Fallback(rng.below(spec.rings as u64) as u32, rng.below(100)),
        }
    }

    fn apply(self, engine: &mut Engine) {
        match self {
            Edit::Salt(node, v) => engine.set_input::<Salt>(node, v),
            Edit::Mask(node, v) => engine.set_input::<Mask>(node, v),
            Edit::Ring(ring, v) => engine.set_input::<RingClosed>(ring, v),
            Edit::Fallback(ring, v) => engine.set_input::<Fallback>(ring, v),
        }
    }
}

/// The inputs every script starts from: most salts set, every ring closed.
fn initial_edits(rng: &mut Rng, spec: &Spec) -> Vec<Edit> {
    let mut edits = Vec::new();
    for node in 0..spec.nodes.len() as u32 {
        if !rng.chance(5) {
            edits.push(Edit::Salt(node, rng.below(40)));
        }
    }
    edits.extend((0..spec.rings).map(|ring| Edit::Ring(ring, true)));
    edits
}

type Results = Vec<(u32, Result<u64, String>)>;

/// The results of `nodes`, requested in parallel from one run in the given order.
fn request(engine: &Engine, spec: &Arc<Spec>, nodes: &[u32]) -> Results {
    let keys: Vec<Key> = nodes
        .iter()
        .map(|&node| Key {
            spec: spec.clone(),
            node,
        })
        .collect();
    let mut results = engine
        .run(|cx| {
            cx.par_map(&keys, |cx, k| {
                (k.node, cx.try_get::<Node>(k).map_err(|e| e.to_string()))
            })
        })
        .expect("the root uses try_get only");
    results.sort_by_key(|(node, _)| *node);
    results
}

/// An engine under test, kept across the script, with the pool it runs on.
struct Subject {
    name: String,
    pool: Option<Arc<ThreadPool>>,
    engine: Arc<Engine>,
}

impl Subject {
    /// `request` with a watchdog: a hang fails the test with the wait graph.
    fn request(&self, spec: &Arc<Spec>, nodes: &[u32], what: &str) -> Results {
        let (tx, rx) = mpsc::channel();
        {
            let (engine, spec, nodes, pool) = (
                self.engine.clone(),
                spec.clone(),
                nodes.to_vec(),
                self.pool.clone(),
            );
            std::thread::spawn(move || {
                let got = match pool {
                    Some(pool) => pool.install(|| request(&engine, &spec, &nodes)),
                    None => request(&engine, &spec, &nodes),
                };
                // Give the engine back before the caller goes on to edit it.
                drop(engine);
                let _ = tx.send(got);
            });
        }
        rx.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "{what}, {}: hung; blocked requests:\n{}",
                    self.name,
                    self.engine.wait_graph()
                )
            })
    }

    fn edit(&mut self, edit: Edit) {
        let engine = Arc::get_mut(&mut self.engine).expect("no run in progress");
        edit.apply(engine);
    }
}

#[test]
fn edit_scripts_agree_with_a_fresh_engine_at_every_thread_count() {
    let scripts: u64 = std::env::var("WEFT_INCR_SCRIPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let pools: Vec<Arc<ThreadPool>> = [1, 2, 4, 8]
        .iter()
        .map(|&n| Arc::new(ThreadPoolBuilder::new().num_threads(n).build().unwrap()))
        .collect();
    let (mut reused, mut cut_off, mut executed) = (0, 0, 0);
    let (mut cycles, mut panics, mut unset) = (0, 0, 0);
    for seed in 0..scripts {
        let mut rng = Rng(seed.wrapping_mul(0x5851_F42D_4C95_7F2D) ^ 0x1F);
        let size = 30 + rng.below(90) as u32;
        let spec = Arc::new(random_spec(&mut rng, size));
        let mut inputs = initial_edits(&mut rng, &spec);
        let mut subjects: Vec<Subject> = std::iter::once((None, Engine::serial()))
            .chain(pools.iter().map(|p| (Some(p.clone()), Engine::new())))
            .map(|(pool, engine)| {
                let name = match &pool {
                    Some(p) => format!("{} thread(s)", p.current_num_threads()),
                    None => "serial".to_string(),
                };
                let mut engine = engine.incremental();
                for edit in &inputs {
                    edit.apply(&mut engine);
                }
                Subject {
                    name,
                    pool,
                    engine: Arc::new(engine),
                }
            })
            .collect();
        let mut last_nodes = Vec::new();
        for step in 0..8 {
            if step > 0 {
                // Step 1 re-runs with nothing changed; later steps edit 1–3 inputs.
                let edits: Vec<Edit> = if step == 1 {
                    Vec::new()
                } else {
                    (0..1 + rng.below(3))
                        .map(|_| Edit::random(&mut rng, &spec))
                        .collect()
                };
                for subject in &mut subjects {
                    for edit in &edits {
                        subject.edit(*edit);
                    }
                }
                inputs.extend(edits);
            }
            // A random share of the nodes (all of them half the time), in random order;
            // step 1 asks for what step 0 did.
            let mut nodes: Vec<u32> = (0..size).filter(|_| !rng.chance(3)).collect();
            if rng.chance(2) || nodes.is_empty() {
                nodes = (0..size).collect();
            }
            if step == 1 {
                nodes = last_nodes.clone();
            }
            last_nodes = nodes.clone();
            for i in (1..nodes.len()).rev() {
                nodes.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let mut fresh = Engine::serial();
            for edit in &inputs {
                edit.apply(&mut fresh);
            }
            let expected = request(&fresh, &spec, &nodes);
            for (_, result) in &expected {
                match result {
                    Err(e) if e.starts_with("cycle detected") => cycles += 1,
                    Err(e) if e.contains("panicked") => panics += 1,
                    Err(e) if e.contains("never set") => unset += 1,
                    _ => {}
                }
            }
            for subject in &subjects {
                let what = format!("seed {seed}, step {step}");
                let before = subject.engine.stats();
                let got = subject.request(&spec, &nodes, &what);
                for ((node, want), (_, have)) in expected.iter().zip(&got) {
                    assert_eq!(have, want, "{what}, {}, node {node}", subject.name);
                }
                let after = subject.engine.stats();
                assert_eq!(after.revision, before.revision);
                if step == 1 {
                    assert_eq!(
                        after, before,
                        "{what}, {}: nothing changed, yet queries ran or were checked",
                        subject.name
                    );
                }
                reused += after.verified - before.verified;
                cut_off += after.backdated - before.backdated;
                executed += after.executed - before.executed;
            }
        }
    }
    // The scripts exercise what they are meant to.
    assert!(
        reused > 0 && cut_off > 0 && executed > 0 && cycles > 0 && panics > 0 && unset > 0,
        "reused {reused}, cut off {cut_off}, executed {executed}, cycles {cycles}, \
         panics {panics}, unset {unset}"
    );
    eprintln!(
        "{scripts} scripts: reused {reused}, cut off {cut_off}, executed {executed}; \
         reference errors: {cycles} cycles, {panics} panics, {unset} unset inputs"
    );
}
