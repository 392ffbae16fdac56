//! The query DAG of `../shared/workloads/query-dag.md`, incremental: every node reads an
//! input "salt" (0 at first, so the first evaluation gives the workload's sum) mixed
//! into its value. `cargo bench --bench dag_incremental`.
//!
//! Per round and variant, on a fresh engine (or salsa database) with every salt set:
//! a full evaluation; a **no-change** re-evaluation in a new revision (weft: an input
//! nothing reads is set; salsa: the same, so every memo must be re-verified); then the
//! **edit**: the salt of node 50,000 (a mid-graph node that many chains go through)
//! becomes 1, and every root is evaluated again. Only the evaluations are timed;
//! variants are interleaved; medians are printed with the ratios the issue asks for.
//!
//! Variants: `weft-serial` (`Engine::serial().incremental()`), `weft T`
//! (`Engine::new().incremental()` on a T-thread pool), `salsa T` (salsa 0.28, nodes as
//! inputs holding their dependency list and salt, `value` a tracked function, chunks
//! spawned on a rayon pool of T threads, each on its own database handle).
//!
//! Then, in processes of their own, the memory an incremental engine adds over a batch
//! one after the full evaluation (weft at 1 thread), per query and per recorded edge.
//!
//! Options: `--n N` (100000), `--w W` (64), `--rounds R` (5), `--only VARIANT` (one
//! variant's phases, e.g. under callgrind; no table). Without `--bench` (a plain
//! `cargo test`) it runs one tiny round as a smoke test.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use salsa::Setter;
use weft::query::{Cx, Engine, Input, Query};

#[path = "common/dag_graph.rs"]
mod dag_graph;
use dag_graph::{check_graph, graph, salsa_chunked_sum, salted_value_of, weft_chunked_sum};

static DEPS: OnceLock<Vec<Vec<u32>>> = OnceLock::new();
static W: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(64);
const CHUNK: usize = 256;

fn deps() -> &'static [Vec<u32>] {
    DEPS.get().expect("the graph is built first")
}
fn w() -> u32 {
    W.load(std::sync::atomic::Ordering::Relaxed)
}
fn n() -> u32 {
    deps().len() as u32
}
/// The node whose salt the edit changes.
fn edited() -> u32 {
    n() / 2
}

/// The sum with every salt 0 except `edited()`'s, which is `salt`: a plain loop.
fn expected_sum(salt: u64) -> u64 {
    let mut values: Vec<u64> = Vec::with_capacity(deps().len());
    for (i, d) in deps().iter().enumerate() {
        let s = if i as u32 == edited() { salt } else { 0 };
        let v = salted_value_of(i as u32, s, d.iter().map(|&j| values[j as usize]), w());
        values.push(v);
    }
    values.iter().fold(0, |a, &v| a.wrapping_add(v))
}

// ---------------------------------------------------------------- weft

struct Salt;
impl Input for Salt {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "salt";
}

struct Value;
impl Query for Value {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "value";
    fn compute(cx: &Cx<'_>, i: &u32) -> u64 {
        let salt = cx.get::<Salt>(i);
        let d = &deps()[*i as usize];
        salted_value_of(*i, salt, d.iter().map(|j| cx.get::<Value>(j)), w())
    }
    fn same(old: &u64, new: &u64) -> bool {
        old == new
    }
}

fn weft_sum(cx: &Cx<'_>) -> u64 {
    weft_chunked_sum::<Value>(cx, n(), CHUNK)
}

// ---------------------------------------------------------------- salsa

#[salsa::input]
struct Node {
    #[returns(copy)]
    id: u32,
    #[returns(ref)]
    deps: Vec<Node>,
    #[returns(copy)]
    salt: u64,
}

/// An input nothing reads: setting it starts a new revision and changes nothing.
#[salsa::input]
struct Clock {
    tick: u32,
}

#[salsa::tracked(returns(copy))]
fn salsa_value(db: &dyn salsa::Database, node: Node) -> u64 {
    let deps: Vec<Node> = node.deps(db).clone();
    salted_value_of(
        node.id(db),
        node.salt(db),
        deps.into_iter().map(|d| salsa_value(db, d)),
        w(),
    )
}

fn salsa_sum(pool: &rayon::ThreadPool, db: &salsa::DatabaseImpl, nodes: &[Node]) -> u64 {
    salsa_chunked_sum(pool, db, nodes, CHUNK, |db, n| salsa_value(db, n))
}

// ---------------------------------------------------------------- one round

/// The three timed evaluations of one variant on a fresh engine: (sum, time) each.
struct Round {
    full: (u64, Duration),
    no_change: (u64, Duration),
    edit: (u64, Duration),
    /// weft only: (executed, verified, backdated) in the edit's revision.
    edit_counts: Option<(u64, u64, u64)>,
}

fn run(variant: &str) -> Round {
    match variant {
        "weft-serial" | "weft-1" | "weft-2" => {
            let pool = match variant {
                "weft-1" => Some(1),
                "weft-2" => Some(2),
                _ => None,
            }
            .map(|t| {
                weft::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .unwrap()
            });
            let mut engine = if pool.is_some() {
                Engine::new()
            } else {
                Engine::serial()
            }
            .incremental();
            for i in 0..n() {
                engine.set_input::<Salt>(i, 0);
            }
            let eval = |engine: &Engine| {
                let f = || timed(|| engine.run(weft_sum).unwrap());
                match &pool {
                    Some(pool) => pool.install(f),
                    None => f(),
                }
            };
            let full = eval(&engine);
            engine.set_input::<Salt>(n(), 0); // no query reads node n's salt
            let no_change = eval(&engine);
            engine.set_input::<Salt>(edited(), 1);
            let edit = eval(&engine);
            let s = engine.stats();
            Round {
                full,
                no_change,
                edit,
                edit_counts: Some((s.executed, s.verified, s.backdated)),
            }
        }
        "salsa-1" | "salsa-2" => {
            let threads = if variant == "salsa-1" { 1 } else { 2 };
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut db = salsa::DatabaseImpl::default();
            let mut nodes: Vec<Node> = Vec::with_capacity(deps().len());
            for (i, d) in deps().iter().enumerate() {
                let d = d.iter().map(|&j| nodes[j as usize]).collect();
                nodes.push(Node::new(&db, i as u32, d, 0));
            }
            let clock = Clock::new(&db, 0);
            let full = timed(|| salsa_sum(&pool, &db, &nodes));
            clock.set_tick(&mut db).to(1);
            let no_change = timed(|| salsa_sum(&pool, &db, &nodes));
            nodes[edited() as usize].set_salt(&mut db).to(1);
            let edit = timed(|| salsa_sum(&pool, &db, &nodes));
            Round {
                full,
                no_change,
                edit,
                edit_counts: None,
            }
        }
        other => panic!("unknown variant `{other}`"),
    }
}

fn timed(f: impl FnOnce() -> u64) -> (u64, Duration) {
    let start = Instant::now();
    let sum = black_box(f());
    (sum, start.elapsed())
}

const VARIANTS: [&str; 5] = ["weft-serial", "weft-1", "weft-2", "salsa-1", "salsa-2"];

// ---------------------------------------------------------------- memory

/// Peak resident memory of this process so far (`VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    kb * 1024
}

/// Child mode `--memory batch|incremental`: one full evaluation at 1 thread, then the
/// peak RSS.
fn memory_child(kind: &str) {
    let pool = weft::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut engine = Engine::new();
    if kind == "incremental" {
        engine = engine.incremental();
    }
    for i in 0..n() {
        engine.set_input::<Salt>(i, 0);
    }
    let sum = pool.install(|| engine.run(weft_sum).unwrap());
    assert_eq!(sum, expected_sum(0));
    println!("{}", peak_rss());
}

fn memory_report(args: &[String]) {
    let rss = |kind: &str| -> u64 {
        let exe = std::env::current_exe().expect("the bench's own path");
        let mut child_args = vec!["--memory".to_string(), kind.to_string()];
        child_args.extend(args.iter().cloned());
        let out = std::process::Command::new(exe)
            .args(&child_args)
            .output()
            .expect("the bench runs as a child");
        assert!(out.status.success(), "child {kind} failed: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .expect("the child prints its peak RSS")
    };
    let (batch, incremental) = (rss("batch"), rss("incremental"));
    // What each query records: its salt and each dependency (repeats of the previous
    // one dropped, as the engine does).
    let edges: u64 = deps()
        .iter()
        .map(|d| 1 + d.windows(2).filter(|p| p[0] != p[1]).count() as u64 + !d.is_empty() as u64)
        .sum();
    let extra = incremental.saturating_sub(batch) as f64;
    println!(
        "memory: incremental - batch engine after a full evaluation (weft, 1 thread, peak RSS): \
         {:.1} bytes per query, {:.1} bytes per recorded edge ({} queries, {edges} edges, \
         all of the difference charged to edges)",
        extra / f64::from(n()),
        extra / edges as f64,
        n()
    );
}

// ---------------------------------------------------------------- main

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let benching = args.iter().any(|a| a == "--bench") || arg("--memory").is_some();
    let n: u32 = arg("--n").map_or(if benching { 100_000 } else { 2_000 }, |v| {
        v.parse().expect("--n takes a number")
    });
    if let Some(w) = arg("--w") {
        W.store(
            w.parse().expect("--w takes a number"),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    let rounds: usize = arg("--rounds").map_or(if benching { 5 } else { 1 }, |v| {
        v.parse().expect("--rounds takes a number")
    });
    DEPS.set(graph(n)).ok();
    check_graph(deps());
    if let Some(kind) = arg("--memory") {
        return memory_child(&kind);
    }
    let (before, after) = (expected_sum(0), expected_sum(1));
    if let Some(variant) = arg("--only") {
        for _ in 0..rounds {
            let round = run(&variant);
            assert_eq!(
                (round.full.0, round.no_change.0, round.edit.0),
                (before, before, after)
            );
            let ms = |(_, t): (u64, Duration)| t.as_secs_f64() * 1e3;
            println!(
                "{variant}: full {:.2} ms, no change {:.3} ms, edit {:.2} ms",
                ms(round.full),
                ms(round.no_change),
                ms(round.edit)
            );
        }
        return;
    }
    let mut times: Vec<[Vec<Duration>; 3]> = vec![Default::default(); VARIANTS.len()];
    let mut counts = None;
    for _ in 0..rounds {
        for (k, variant) in VARIANTS.iter().enumerate() {
            let round = run(variant);
            assert_eq!(round.full.0, before, "{variant}: full evaluation");
            assert_eq!(
                round.no_change.0, before,
                "{variant}: no-change re-evaluation"
            );
            assert_eq!(round.edit.0, after, "{variant}: after the edit");
            for (phase, (_, t)) in [round.full, round.no_change, round.edit].iter().enumerate() {
                times[k][phase].push(*t);
            }
            counts = counts.or(round.edit_counts);
        }
    }
    let median = |t: &[Duration]| {
        let mut t = t.to_vec();
        t.sort();
        t[t.len() / 2]
    };
    let medians: Vec<[Duration; 3]> = times
        .iter()
        .map(|p| [median(&p[0]), median(&p[1]), median(&p[2])])
        .collect();
    println!(
        "incremental query DAG: N = {n}, W = {}, {rounds} rounds; edit: salt of node {}",
        w(),
        edited()
    );
    println!(
        "{:<12} {:>12} {:>16} {:>12}",
        "variant", "full ms", "no change ms", "edit ms"
    );
    for (variant, m) in VARIANTS.iter().zip(&medians) {
        println!(
            "{variant:<12} {:>12.2} {:>16.3} {:>12.2}",
            m[0].as_secs_f64() * 1e3,
            m[1].as_secs_f64() * 1e3,
            m[2].as_secs_f64() * 1e3
        );
    }
    let find = |v: &str| medians[VARIANTS.iter().position(|x| *x == v).unwrap()];
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    for (phase, name) in [(1, "no change"), (2, "edit")] {
        for t in ["1", "2"] {
            println!(
                "{name}: weft vs salsa at {t} thread(s): {:.2}x faster",
                ratio(
                    find(&format!("salsa-{t}"))[phase],
                    find(&format!("weft-{t}"))[phase]
                )
            );
        }
        println!(
            "{name}: weft 2 threads vs 1: {:.2}x; salsa: {:.2}x",
            ratio(find("weft-1")[phase], find("weft-2")[phase]),
            ratio(find("salsa-1")[phase], find("salsa-2")[phase])
        );
    }
    if let Some((executed, verified, backdated)) = counts {
        println!(
            "edit revision (weft): {executed} executed, {verified} verified green, \
             {backdated} backdated, of {n} queries"
        );
    }
    if benching {
        memory_report(&["--n".to_string(), n.to_string()]);
    }
}
