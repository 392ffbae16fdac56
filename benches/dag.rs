//! The compiler-shaped query DAG of `../shared/workloads/query-dag.md`, exactly as
//! defined there, for every variant in one run: `cargo bench --bench dag`.
//!
//! Variants (interleaved, fresh engine per round, only the evaluation timed): `serial`
//! (a loop, no engine), `memo` (a naive recursive `FxHashMap` memo), `weft-serial`
//! (`Engine::serial()`), `weft T` (`Engine::new()` on a T-thread pool), `dense-serial`
//! and `dense T` (the same with the memo indexed by node id, `Query::KEY_INDEX`) and `salsa T`
//! (salsa 0.28: each node an input holding its dependency list, `value` a tracked
//! function; chunks spawned on a rayon pool of T threads, each on its own database
//! handle). Prints medians and the engine cost per query `(t - t_serial) / N`.
//!
//! Then, each variant once more in a fresh process of its own (W = 64): its peak RSS,
//! as bytes per query above `serial`'s, and its context switches (all threads, from
//! `getrusage`). Last, the memory of 1,000,000 `u32 -> u64` memo entries (weft's two
//! engines, a dense memo, and a `HashMap`), each in a fresh process, as bytes per entry.
//!
//! Options: `--n N` (100000), `--w W[,W..]` (64,0), `--rounds R` (7), `--only VARIANT`
//! (run just one variant, e.g. under `perf stat -e context-switches`; skips the
//! per-process and memory parts). Without `--bench` on the command line (a plain
//! `cargo test`), it runs one tiny round as a smoke test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use weft::query::{Cx, Engine, Query};

// ---------------------------------------------------------------- the graph

#[path = "common/dag_graph.rs"]
mod dag_graph;
use dag_graph::{check_graph, graph, salsa_chunked_sum, value_of, weft_chunked_sum};

/// What every query reads: the graph and `W` (the graph is built once per process; `W`
/// changes between tables of one run).
struct Spec {
    deps: Vec<Vec<u32>>,
}
static SPEC: std::sync::OnceLock<Spec> = std::sync::OnceLock::new();
static W: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(64);
fn spec() -> &'static Spec {
    SPEC.get()
        .expect("the graph is built before any variant runs")
}
fn w() -> u32 {
    W.load(std::sync::atomic::Ordering::Relaxed)
}

const CHUNK: usize = 256;

// ---------------------------------------------------------------- variants

fn serial() -> u64 {
    let spec = spec();
    let mut values: Vec<u64> = Vec::with_capacity(spec.deps.len());
    for (i, deps) in spec.deps.iter().enumerate() {
        let v = value_of(i as u32, deps.iter().map(|&j| values[j as usize]), w());
        values.push(v);
    }
    values.iter().fold(0, |a, &v| a.wrapping_add(v))
}

fn memo() -> u64 {
    fn get(memo: &mut FxHashMap<u32, u64>, i: u32) -> u64 {
        if let Some(&v) = memo.get(&i) {
            return v;
        }
        let spec = spec();
        let mut h = u64::from(i) ^ 0xcbf2_9ce4_8422_2325;
        for &j in &spec.deps[i as usize] {
            h = (h ^ get(memo, j)).wrapping_mul(0x0100_0000_01b3);
        }
        for _ in 0..w() {
            h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        }
        memo.insert(i, h);
        h
    }
    let mut memo = FxHashMap::default();
    let n = spec().deps.len() as u32;
    (0..n).fold(0u64, |a, i| a.wrapping_add(get(&mut memo, i)))
}

struct Value;
impl Query for Value {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "value";
    fn compute(cx: &Cx<'_>, i: &u32) -> u64 {
        node_value::<Value>(cx, *i)
    }
}

/// Node `i`'s value, its dependencies read through query `Q` (`Value` or `DenseValue`).
fn node_value<Q: Query<Key = u32, Value = u64>>(cx: &Cx<'_>, i: u32) -> u64 {
    let deps = &spec().deps[i as usize];
    value_of(i, deps.iter().map(|j| cx.get::<Q>(j)), w())
}

fn weft_sum(cx: &Cx<'_>) -> u64 {
    weft_chunked_sum::<Value>(cx, spec().deps.len() as u32, CHUNK)
}

/// `Value` with its memo indexed by the node id (`Query::KEY_INDEX`): no hashing, as
/// salsa's memos are indexed by its ids.
struct DenseValue;
impl Query for DenseValue {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "value";
    const KEY_INDEX: Option<fn(&u32) -> u32> = Some(|i| *i);
    fn compute(cx: &Cx<'_>, i: &u32) -> u64 {
        node_value::<DenseValue>(cx, *i)
    }
}

fn weft_dense_sum(cx: &Cx<'_>) -> u64 {
    weft_chunked_sum::<DenseValue>(cx, spec().deps.len() as u32, CHUNK)
}

#[salsa::input]
struct Node {
    #[returns(copy)]
    id: u32,
    #[returns(ref)]
    deps: Vec<Node>,
}

#[salsa::tracked(returns(copy))]
fn salsa_value(db: &dyn salsa::Database, node: Node) -> u64 {
    let deps: Vec<Node> = node.deps(db).clone();
    value_of(
        node.id(db),
        deps.into_iter().map(|d| salsa_value(db, d)),
        w(),
    )
}

/// Runs one variant once: (its sum, the evaluation's wall time).
fn run(variant: &str) -> (u64, Duration) {
    match variant {
        "serial" => timed(serial),
        "memo" => timed(memo),
        "weft-serial" => {
            let engine = Engine::serial();
            let out = timed(|| engine.run(weft_sum).unwrap());
            drop(engine);
            out
        }
        "dense-serial" => {
            let engine = Engine::serial();
            let out = timed(|| engine.run(weft_dense_sum).unwrap());
            drop(engine);
            out
        }
        "weft-1" | "weft-2" | "dense-1" | "dense-2" => {
            let threads = if variant.ends_with('1') { 1 } else { 2 };
            let sum = if variant.starts_with("dense") {
                weft_dense_sum
            } else {
                weft_sum
            };
            let pool = weft::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let engine = Engine::new();
            let out = pool.install(|| timed(|| engine.run(sum).unwrap()));
            drop(engine);
            out
        }
        "salsa-1" | "salsa-2" => {
            let threads = if variant == "salsa-1" { 1 } else { 2 };
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let db = salsa::DatabaseImpl::default();
            let mut nodes: Vec<Node> = Vec::with_capacity(spec().deps.len());
            for (i, deps) in spec().deps.iter().enumerate() {
                let deps = deps.iter().map(|&j| nodes[j as usize]).collect();
                nodes.push(Node::new(&db, i as u32, deps));
            }
            timed(|| salsa_chunked_sum(&pool, &db, &nodes, CHUNK, |db, n| salsa_value(db, n)))
        }
        other => panic!("unknown variant `{other}`"),
    }
}

fn timed(f: impl FnOnce() -> u64) -> (u64, Duration) {
    let start = Instant::now();
    let sum = black_box(f());
    (sum, start.elapsed())
}

const VARIANTS: [&str; 10] = [
    "serial",
    "memo",
    "weft-serial",
    "weft-1",
    "weft-2",
    "dense-serial",
    "dense-1",
    "dense-2",
    "salsa-1",
    "salsa-2",
];

/// Peak resident memory of this process so far (`VmHWM`), and its context switches
/// (voluntary and involuntary, over all its threads, finished ones included).
fn usage() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    // SAFETY: `getrusage` fills the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    (peak_kb * 1024, (usage.ru_nvcsw + usage.ru_nivcsw) as u64)
}

/// Runs this bench again as `args` and returns the numbers its last line prints.
fn child(args: &[String]) -> Vec<u64> {
    let exe = std::env::current_exe().expect("the bench's own path");
    let out = std::process::Command::new(exe)
        .args(args)
        .output()
        .expect("the bench runs as a child");
    assert!(out.status.success(), "child {args:?} failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("");
    line.split_whitespace()
        .map(|x| x.parse().expect("the child prints numbers"))
        .collect()
}

/// Child mode `--usage VARIANT`: one run, then `peak-rss context-switches`.
fn usage_child(variant: &str) {
    let (sum, _) = run(variant);
    assert_eq!(sum, serial(), "{variant} computed the right sum");
    let (rss, switches) = usage();
    println!("{rss} {switches}");
}

struct Leaf;
impl Query for Leaf {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "leaf";
    fn compute(_: &Cx<'_>, i: &u32) -> u64 {
        u64::from(*i) * 3
    }
}

/// `Leaf` with a dense memo (`KEY_INDEX`).
struct DenseLeaf;
impl Query for DenseLeaf {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "leaf";
    const KEY_INDEX: Option<fn(&u32) -> u32> = Some(|i| *i);
    fn compute(_: &Cx<'_>, i: &u32) -> u64 {
        u64::from(*i) * 3
    }
}

const MEMORY_ENTRIES: u32 = 1_000_000;

/// Child mode `--memory IMPL`: 1,000,000 `u32 -> u64` entries, then `peak-rss`.
fn memory_child(imp: &str) {
    let n = MEMORY_ENTRIES;
    let sum = match imp {
        "none" => (0..n)
            .map(|i| u64::from(i) * 3)
            .fold(0u64, u64::wrapping_add),
        "hashmap" => {
            let mut map = std::collections::HashMap::new();
            for i in 0..n {
                map.insert(i, u64::from(i) * 3);
            }
            map.values().fold(0u64, |a, &v| a.wrapping_add(v))
        }
        "weft" | "weft-serial" | "weft-dense" => {
            let engine = if imp == "weft-serial" {
                Engine::serial()
            } else {
                Engine::new()
            };
            let pool = weft::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            pool.install(|| {
                engine
                    .run(|cx| {
                        (0..n).fold(0u64, |a, i| {
                            a.wrapping_add(if imp == "weft-dense" {
                                cx.get::<DenseLeaf>(&i)
                            } else {
                                cx.get::<Leaf>(&i)
                            })
                        })
                    })
                    .unwrap()
            })
        }
        other => panic!("unknown memory probe `{other}`"),
    };
    black_box(sum);
    println!("{}", usage().0);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(imp) = arg("--memory") {
        return memory_child(&imp);
    }
    let benching = args.iter().any(|a| a == "--bench") || arg("--only").is_some();
    let n: u32 = arg("--n").map_or(if benching { 100_000 } else { 2_000 }, |v| {
        v.parse().expect("--n takes a number")
    });
    let ws: Vec<u32> = arg("--w").map_or_else(
        || if benching { vec![64, 0] } else { vec![64] },
        |v| {
            v.split(',')
                .map(|w| w.parse().expect("--w takes numbers"))
                .collect()
        },
    );
    let rounds: usize = arg("--rounds").map_or(if benching { 7 } else { 1 }, |v| {
        v.parse().expect("--rounds takes a number")
    });
    let only = arg("--only");
    SPEC.set(Spec { deps: graph(n) }).ok();
    check_graph(&spec().deps);
    if let Some(variant) = arg("--usage") {
        W.store(ws[0], std::sync::atomic::Ordering::Relaxed);
        return usage_child(&variant);
    }
    let variants: Vec<&str> = match &only {
        Some(v) => vec![VARIANTS
            .iter()
            .copied()
            .find(|x| x == v)
            .expect("a known variant")],
        None => VARIANTS.to_vec(),
    };
    for &w in &ws {
        W.store(w, std::sync::atomic::Ordering::Relaxed);
        time_variants(&variants, n, rounds);
    }
    if only.is_none() && benching {
        per_process(n);
        memory_per_entry();
    }
}

/// The interleaved timing rounds, and their table.
fn time_variants(variants: &[&str], n: u32, rounds: usize) {
    let expected = serial();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (k, variant) in variants.iter().enumerate() {
            let (sum, time) = run(variant);
            assert_eq!(sum, expected, "{variant} computed the right sum");
            times[k].push(time);
        }
    }
    let median = |t: &mut Vec<Duration>| {
        t.sort();
        t[t.len() / 2]
    };
    let medians: Vec<Duration> = times.iter_mut().map(median).collect();
    let base = variants
        .iter()
        .position(|v| *v == "serial")
        .map(|k| medians[k]);
    println!(
        "query DAG: N = {n}, W = {}, {rounds} rounds, sum = {expected}",
        w()
    );
    println!(
        "{:<12} {:>10} {:>22}",
        "variant", "median ms", "engine ns per query"
    );
    for (variant, t) in variants.iter().zip(&medians) {
        let cost = base.map_or(String::from("-"), |b| {
            format!(
                "{:.0}",
                (t.as_secs_f64() - b.as_secs_f64()) * 1e9 / f64::from(n)
            )
        });
        println!("{variant:<12} {:>10.2} {cost:>22}", t.as_secs_f64() * 1e3);
    }
    let find = |v: &str| variants.iter().position(|x| *x == v).map(|k| medians[k]);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    // `weft`: hashed keys; `dense`: the same query with `KEY_INDEX`.
    for kind in ["weft", "dense"] {
        if let (Some(one), Some(two)) = (find(&format!("{kind}-1")), find(&format!("{kind}-2"))) {
            println!("{kind} 2 threads vs 1 thread: {:.2}x", ratio(one, two));
        }
        for t in ["1", "2"] {
            if let (Some(weft), Some(salsa)) =
                (find(&format!("{kind}-{t}")), find(&format!("salsa-{t}")))
            {
                println!(
                    "{kind} vs salsa at {t} thread(s): {:.2}x faster",
                    ratio(salsa, weft)
                );
            }
        }
        if let (Some(serial), Some(memo), Some(b)) =
            (find(&format!("{kind}-serial")), find("memo"), base)
        {
            let cost = |t: Duration| t.as_secs_f64() - b.as_secs_f64();
            println!(
                "{kind}: Engine::serial() / memo: {:.2}x wall; engine cost per query / memo's: {:.2}x",
                ratio(serial, memo),
                cost(serial) / cost(memo)
            );
            if let Some(one) = find(&format!("{kind}-1")) {
                println!(
                    "{kind} 1 thread: engine cost per query / memo's: {:.2}x",
                    cost(one) / cost(memo)
                );
            }
        }
    }
    println!();
}

/// Each variant once in a process of its own (W = 64): peak RSS and context switches.
fn per_process(n: u32) {
    println!("one run per process, N = {n}, W = 64: peak RSS above `serial`'s, context switches");
    println!(
        "{:<12} {:>16} {:>18}",
        "variant", "bytes per query", "context switches"
    );
    let mut base = None;
    for variant in VARIANTS {
        let args = [
            "--usage".to_string(),
            variant.to_string(),
            "--n".to_string(),
            n.to_string(),
            "--w".to_string(),
            "64".to_string(),
        ];
        let got = child(&args);
        let (rss, switches) = (got[0], got[1]);
        let base = *base.get_or_insert(rss);
        println!(
            "{variant:<12} {:>16.0} {switches:>18}",
            (rss as f64 - base as f64) / f64::from(n)
        );
    }
    println!();
}

/// 1,000,000 `u32 -> u64` entries, each kind in a process of its own.
fn memory_per_entry() {
    println!("memory of {MEMORY_ENTRIES} u32 -> u64 memo entries (peak RSS above an empty run's)");
    let rss = |imp: &str| child(&["--memory".to_string(), imp.to_string()])[0];
    let none = rss("none");
    let per_entry = |imp: &str| (rss(imp).saturating_sub(none)) as f64 / f64::from(MEMORY_ENTRIES);
    let hashmap = per_entry("hashmap");
    println!("{:<14} {:>8.1} bytes per entry", "HashMap", hashmap);
    for imp in ["weft", "weft-serial", "weft-dense"] {
        let bytes = per_entry(imp);
        println!(
            "{imp:<14} {bytes:>8.1} bytes per entry ({:.2}x HashMap's)",
            bytes / hashmap
        );
    }
}
