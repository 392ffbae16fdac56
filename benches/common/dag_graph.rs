//! The graph and node value of the shared query-DAG workload
//! (`../shared/workloads/query-dag.md`), for `dag.rs` and `dag_incremental.rs`.
//! Included with `#[path = "common/dag_graph.rs"] mod dag_graph;`.
#![allow(dead_code)]

/// Dependency lists, as the workload defines them.
pub fn graph(n: u32) -> Vec<Vec<u32>> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut draw = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut deps = vec![Vec::new()];
    for i in 1..n {
        let d = 1 + draw() % 4;
        let window = u64::from(i.min(1000));
        deps.push((0..d).map(|_| i - 1 - (draw() % window) as u32).collect());
    }
    deps
}

/// The value of node `i` from its dependencies' values, with `w` rounds of mixing.
pub fn value_of(i: u32, deps: impl Iterator<Item = u64>, w: u32) -> u64 {
    salted_value_of(i, 0, deps, w)
}

/// [`value_of`] with a salt mixed into the start (salt 0 gives the workload's value):
/// the incremental variant's node value.
pub fn salted_value_of(i: u32, salt: u64, deps: impl Iterator<Item = u64>, w: u32) -> u64 {
    let mut h = u64::from(i) ^ 0xcbf2_9ce4_8422_2325 ^ salt;
    for v in deps {
        h = (h ^ v).wrapping_mul(0x0100_0000_01b3);
    }
    for _ in 0..w {
        h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
    h
}

/// Checks the graph against the workload's published dependency lists.
pub fn check_graph(deps: &[Vec<u32>]) {
    if deps.len() == 100_000 {
        assert_eq!(deps[4], [1, 2, 0, 2], "the graph matches the workload");
        assert_eq!(
            deps[99_999],
            [99_495, 99_352],
            "the graph matches the workload"
        );
    }
}

/// The salsa variants' evaluation: every node a root, in chunks of `chunk` consecutive
/// nodes spawned on `pool`, each chunk on its own database handle; the wrapping sum of
/// `value` over all nodes.
pub fn salsa_chunked_sum<N: Copy + Send + Sync>(
    pool: &rayon::ThreadPool,
    db: &salsa::DatabaseImpl,
    nodes: &[N],
    chunk: usize,
    value: fn(&salsa::DatabaseImpl, N) -> u64,
) -> u64 {
    let handles: Vec<_> = nodes.chunks(chunk).map(|c| (c, db.clone())).collect();
    pool.install(move || {
        let (tx, rx) = std::sync::mpsc::channel();
        rayon::scope(|s| {
            for (chunk, db) in handles {
                let tx = tx.clone();
                s.spawn(move |_| {
                    let sum = chunk
                        .iter()
                        .fold(0u64, |a, &n| a.wrapping_add(value(&db, n)));
                    tx.send(sum).unwrap();
                });
            }
        });
        drop(tx);
        rx.iter().fold(0u64, |a, v| a.wrapping_add(v))
    })
}

/// The weft variants' evaluation: every node of `0..n` a root, in chunks of `chunk`
/// consecutive ids requested through `cx.par_map`; the wrapping sum of query `Q`.
pub fn weft_chunked_sum<Q: weft::query::Query<Key = u32, Value = u64>>(
    cx: &weft::query::Cx<'_>,
    n: u32,
    chunk: usize,
) -> u64 {
    let ids: Vec<u32> = (0..n).collect();
    let chunks: Vec<&[u32]> = ids.chunks(chunk).collect();
    cx.par_map(&chunks, |cx, chunk| {
        chunk
            .iter()
            .fold(0u64, |a, i| a.wrapping_add(cx.get::<Q>(i)))
    })
    .iter()
    .fold(0, |a, &v| a.wrapping_add(v))
}
