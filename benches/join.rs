//! Scheduler benchmarks, weft against rayon in the same run, at 1 and 2 threads.
//!
//! - `fib25/<lib>/<threads>`: fib(25) with a `join` at every call (no sequential
//!   cutoff): 242,785 joins of almost no work each, so this measures `join` itself.
//! - `tree_sum/<lib>/<threads>`: the sum of a balanced binary tree of 2^20 - 1 boxed
//!   nodes (built once, outside the timing) with a `join` at every inner node.
//!
//! One pool of each size per library is built up front; every iteration is one
//! `pool.install(|| ...)`.
//!
//! Run: `cargo bench --bench join`. Per-join instruction counts (issue 2's goal) come
//! from `benches/callgrind_join.sh`, not from here.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

#[path = "common/workloads.rs"]
mod workloads;
use workloads::*;

const FIB_N: u64 = 25;
const TREE_DEPTH: u32 = 20;
const THREADS: [usize; 2] = [1, 2];

fn fib_expected(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

struct Node {
    value: u64,
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

/// A complete binary tree of the given depth (2^depth - 1 nodes), values numbered in
/// pre-order from `*next`.
fn build_tree(depth: u32, next: &mut u64) -> Option<Box<Node>> {
    if depth == 0 {
        return None;
    }
    let value = *next;
    *next += 1;
    let left = build_tree(depth - 1, next);
    let right = build_tree(depth - 1, next);
    Some(Box::new(Node { value, left, right }))
}

fn sum_weft(node: &Option<Box<Node>>) -> u64 {
    match node {
        None => 0,
        Some(node) => {
            let (l, r) = weft::join(|| sum_weft(&node.left), || sum_weft(&node.right));
            node.value + l + r
        }
    }
}

fn sum_rayon(node: &Option<Box<Node>>) -> u64 {
    match node {
        None => 0,
        Some(node) => {
            let (l, r) = rayon::join(|| sum_rayon(&node.left), || sum_rayon(&node.right));
            node.value + l + r
        }
    }
}

struct Pools {
    weft: Vec<(usize, weft::ThreadPool)>,
    rayon: Vec<(usize, rayon::ThreadPool)>,
}

impl Pools {
    fn new() -> Self {
        Pools {
            weft: THREADS
                .iter()
                .map(|&n| {
                    let pool = weft::ThreadPoolBuilder::new()
                        .num_threads(n)
                        .build()
                        .unwrap();
                    (n, pool)
                })
                .collect(),
            rayon: THREADS
                .iter()
                .map(|&n| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(n)
                        .build()
                        .unwrap();
                    (n, pool)
                })
                .collect(),
        }
    }
}

fn bench_fib(c: &mut Criterion) {
    let pools = Pools::new();
    let expected = fib_expected(FIB_N);
    let mut group = short_group(c, "fib25");
    for (n, pool) in &pools.weft {
        assert_eq!(pool.install(|| fib_weft(FIB_N)), expected);
        group.bench_function(BenchmarkId::new("weft", n), |b| {
            b.iter(|| pool.install(|| fib_weft(black_box(FIB_N))))
        });
    }
    for (n, pool) in &pools.rayon {
        assert_eq!(pool.install(|| fib_rayon(FIB_N)), expected);
        group.bench_function(BenchmarkId::new("rayon", n), |b| {
            b.iter(|| pool.install(|| fib_rayon(black_box(FIB_N))))
        });
    }
    group.finish();
}

fn bench_tree(c: &mut Criterion) {
    let pools = Pools::new();
    let mut next = 0;
    let tree = build_tree(TREE_DEPTH, &mut next);
    let expected = next * (next - 1) / 2;
    let tree = &tree;
    let mut group = short_group(c, "tree_sum");
    for (n, pool) in &pools.weft {
        assert_eq!(pool.install(|| sum_weft(tree)), expected);
        group.bench_function(BenchmarkId::new("weft", n), |b| {
            b.iter(|| pool.install(|| sum_weft(black_box(tree))))
        });
    }
    for (n, pool) in &pools.rayon {
        assert_eq!(pool.install(|| sum_rayon(tree)), expected);
        group.bench_function(BenchmarkId::new("rayon", n), |b| {
            b.iter(|| pool.install(|| sum_rayon(black_box(tree))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_fib, bench_tree);
criterion_main!(benches);
