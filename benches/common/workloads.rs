//! What the benchmarks share: fib by `join`, the memo-hit and DAG query sets, the
//! criterion group settings, and argument parsing for the callgrind drivers.
//! Included by each bench with `#[path = "common/workloads.rs"] mod workloads;`.
#![allow(dead_code)]

use std::time::Duration;

use weft::query::{Cx, Query}; // Cx, Query: the query workloads below.

/// A criterion group with short timings (the machine is small and shared): ids read
/// `<name>/<lib>/<threads>`.
pub fn short_group<'c>(
    c: &'c mut criterion::Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    group
}

/// The positional arguments of a callgrind driver (`cargo bench` adds `--bench`);
/// `None` when there are none, i.e. when a plain `cargo bench` runs the driver.
pub fn driver_args() -> Option<Vec<String>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    (!args.is_empty()).then_some(args)
}

pub fn fib_weft(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = weft::join(|| fib_weft(n - 1), || fib_weft(n - 2));
    a + b
}

pub fn fib_rayon(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = rayon::join(|| fib_rayon(n - 1), || fib_rayon(n - 2));
    a + b
}

/// splitmix64: the deterministic generator behind the key order and the DAG.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// Memo hits
/// Keys looked up per pass: the memo (about 10,000 entries) stays in L2/L3.
pub const HIT_KEYS: u32 = 10_000;

pub fn leaf_value(key: u32) -> u64 {
    u64::from(key).wrapping_mul(0x9E37_79B9) ^ 0x5555
}

pub struct Leaf;
impl Query for Leaf {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "leaf";
    fn compute(_cx: &Cx<'_>, key: &u32) -> u64 {
        leaf_value(*key)
    }
}

/// `Leaf` with a dense memo (`Query::KEY_INDEX`).
pub struct DenseLeaf;
impl Query for DenseLeaf {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "leaf";
    const KEY_INDEX: Option<fn(&u32) -> u32> = Some(|k| *k);
    fn compute(_cx: &Cx<'_>, key: &u32) -> u64 {
        leaf_value(*key)
    }
}

#[salsa::input]
pub struct LeafInput {
    #[returns(copy)]
    key: u32,
}

#[salsa::tracked(returns(copy))]
pub fn salsa_leaf(db: &dyn salsa::Database, input: LeafInput) -> u64 {
    leaf_value(input.key(db))
}

/// `0..HIT_KEYS` in a fixed shuffled order.
pub fn hit_keys() -> Vec<u32> {
    let mut keys: Vec<u32> = (0..HIT_KEYS).collect();
    for i in (1..keys.len()).rev() {
        let j = (mix(i as u64) % (i as u64 + 1)) as usize;
        keys.swap(i, j);
    }
    keys
}

// Random DAG

pub const DAG_LAYERS: u32 = 20;
pub const DAG_LAYER_SIZE: u32 = 5_000;
pub const DAG_N: u32 = DAG_LAYERS * DAG_LAYER_SIZE;

/// The keys `key` depends on: 1 to 4 keys of the next one or two layers (none in the
/// last layer), all larger than `key`.
pub fn dag_deps(key: u32) -> impl Iterator<Item = u32> {
    let layer = key / DAG_LAYER_SIZE;
    let h = mix(u64::from(key));
    let count = if layer + 1 < DAG_LAYERS {
        1 + (h % 4) as u32
    } else {
        0
    };
    (0..count).map(move |j| {
        let r = mix(h ^ u64::from(j + 1));
        let down = if layer + 2 < DAG_LAYERS {
            1 + (r >> 40) % 2
        } else {
            1
        } as u32;
        (layer + down) * DAG_LAYER_SIZE + (r % u64::from(DAG_LAYER_SIZE)) as u32
    })
}

pub fn dag_combine(key: u32, deps: impl Iterator<Item = u64>) -> u64 {
    deps.fold(mix(u64::from(key)), |acc, v| {
        acc.rotate_left(7) ^ v.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

pub struct DagNode;
impl Query for DagNode {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "dag";
    fn compute(cx: &Cx<'_>, key: &u32) -> u64 {
        dag_combine(*key, dag_deps(*key).map(|d| cx.get::<DagNode>(&d)))
    }
}

/// What one iteration computes: every key requested, values summed.
pub fn dag_all(cx: &Cx<'_>, keys: &[u32]) -> u64 {
    cx.par_map(keys, |cx, k| cx.get::<DagNode>(k))
        .into_iter()
        .fold(0, u64::wrapping_add)
}

/// The same sum without any engine (bottom-up over the layers).
pub fn dag_expected() -> u64 {
    let mut values = vec![0u64; DAG_N as usize];
    for key in (0..DAG_N).rev() {
        values[key as usize] = dag_combine(key, dag_deps(key).map(|d| values[d as usize]));
    }
    values.into_iter().fold(0, u64::wrapping_add)
}
