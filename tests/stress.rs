//! Differential stress: random query graphs with injected cycles and panics, run by the
//! parallel engine at 1, 2, 4 and 8 threads and by the serial engine; every value,
//! error and report must be identical. A watchdog turns a hang into a failure with a
//! dump of the wait graph.
//!
//! CI runs a short share; `WEFT_STRESS_GRAPHS=10000 cargo test --release --test stress`
//! runs the long mode.

mod common;

use common::{Calls, NodeKey, Rng};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use weft::query::{Cx, Cycle, Engine, Query};
use weft::ThreadPoolBuilder;

#[derive(Debug)]
struct NodeSpec {
    deps: Vec<u32>,
    calls: Calls,
    /// `try_get` (errors become a number) rather than `get` (errors propagate).
    tolerant: bool,
    panics: bool,
    recovers: bool,
}

struct Spec {
    nodes: Vec<NodeSpec>,
}

type Key = NodeKey<Spec>;

struct Node;
impl Query for Node {
    type Key = Key;
    type Value = u64;
    const NAME: &'static str = "node";
    fn compute(cx: &Cx<'_>, key: &Key) -> u64 {
        let spec = &key.spec.nodes[key.node as usize];
        if spec.panics {
            panic!("node {} panics", key.node);
        }
        let keys: Vec<Key> = spec
            .deps
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
        values.iter().fold(key.node as u64 * 1_000_003, |acc, v| {
            acc.wrapping_mul(31).wrapping_add(*v)
        })
    }
    fn recover(_: &Cx<'_>, key: &Key, cycle: &Cycle) -> Option<u64> {
        let spec = &key.spec.nodes[key.node as usize];
        spec.recovers.then(|| 7 + cycle.participants().len() as u64)
    }
}

fn random_spec(seed: u64, size: u32) -> Spec {
    let mut rng = Rng(seed);
    let mut nodes: Vec<NodeSpec> = (0..size)
        .map(|_| NodeSpec {
            deps: Vec::new(),
            calls: Calls::Sequential,
            tolerant: false,
            panics: false,
            recovers: false,
        })
        .collect();
    // Injected cycles: disjoint runs of nodes that depend only on the next one in
    // their run, the last on the first. Nothing else leaves them, so they are the only
    // cycles and share no participant.
    let mut in_cycle = vec![false; size as usize];
    for _ in 0..rng.below(4) {
        let len = 1 + rng.below(4) as usize;
        let start = rng.below(size as u64) as usize;
        let members: Vec<usize> = (start..start + len)
            .filter(|&i| i < size as usize)
            .collect();
        if members.iter().any(|&i| in_cycle[i]) {
            continue;
        }
        for (pos, &i) in members.iter().enumerate() {
            in_cycle[i] = true;
            nodes[i].deps = vec![members[(pos + 1) % members.len()] as u32];
            nodes[i].calls = Calls::random(&mut rng);
            nodes[i].recovers = rng.below(2) == 0;
            nodes[i].tolerant = rng.below(2) == 0;
        }
    }
    for i in 0..size as usize {
        if in_cycle[i] {
            continue;
        }
        // Acyclic elsewhere: dependencies have larger indices, or are cycle members.
        let fanout = rng.below(5);
        for _ in 0..fanout {
            let j = i as u64 + 1 + rng.below(size as u64);
            if j < size as u64 {
                nodes[i].deps.push(j as u32);
            } else if let Some(c) = (0..size as usize).find(|&c| in_cycle[c] && rng.below(3) == 0) {
                nodes[i].deps.push(c as u32);
            }
        }
        nodes[i].calls = Calls::random(&mut rng);
        nodes[i].tolerant = rng.below(3) != 0;
        nodes[i].panics = rng.below(40) == 0;
    }
    Spec { nodes }
}

/// Every node's result, requested in parallel from the root in a seed-dependent order.
fn run_all(engine: &Engine, spec: &Arc<Spec>, order: &[u32]) -> Vec<(u32, Result<u64, String>)> {
    let keys: Vec<Key> = order
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

#[test]
fn random_graphs_agree_with_the_serial_engine_at_every_thread_count() {
    let graphs: u64 = std::env::var("WEFT_STRESS_GRAPHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let pools: Vec<_> = [1, 2, 4, 8]
        .iter()
        .map(|&n| Arc::new(ThreadPoolBuilder::new().num_threads(n).build().unwrap()))
        .collect();
    let (mut cycles, mut panics, mut values) = (0, 0, 0);
    for seed in 0..graphs {
        let size = 50 + (seed % 4) as u32 * 60;
        let spec = Arc::new(random_spec(seed, size));
        let mut order: Vec<u32> = (0..size).collect();
        let mut rng = Rng(seed ^ 0xABCD);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let expected = run_all(&Engine::serial(), &spec, &order);
        for (_, result) in &expected {
            match result {
                Ok(_) => values += 1,
                Err(e) if e.starts_with("cycle detected") => cycles += 1,
                Err(e) if e.contains("panicked") => panics += 1,
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        for pool in &pools {
            let threads = pool.current_num_threads();
            let engine = Arc::new(Engine::new());
            let (tx, rx) = mpsc::channel();
            {
                let (engine, spec, order, pool) =
                    (engine.clone(), spec.clone(), order.clone(), pool.clone());
                std::thread::spawn(move || {
                    let got = pool.install(|| run_all(&engine, &spec, &order));
                    let _ = tx.send(got);
                });
            }
            let got = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| {
                    panic!(
                        "seed {seed} at {threads} threads hung; blocked requests:\n{}",
                        engine.wait_graph()
                    )
                });
            for ((node, want), (_, have)) in expected.iter().zip(&got) {
                assert_eq!(have, want, "seed {seed}, {threads} threads, node {node}");
            }
        }
    }
    // The graphs exercise what they are meant to.
    assert!(
        cycles > 0 && panics > 0 && values > 0,
        "{cycles} cycle errors, {panics} panics, {values} values"
    );
    eprintln!("{graphs} graphs: {values} values, {cycles} cycle errors, {panics} panics");
}
