//! Instruction-count probe for the query engine, for callgrind (driven by
//! `benches/callgrind_query.sh`); timings are in `benches/query.rs`.
//!
//! Usage:
//! - `query_cost hit IMPL PASSES`: computes 10,000 keys once, then looks each up
//!   PASSES times. IMPL is `weft`, `serial`, `dense` (weft with `Query::KEY_INDEX`),
//!   `hashmap_std`, `hashmap_fx` or `salsa`.
//!   Instructions per hit = (Ir(P2) - Ir(P1)) / ((P2 - P1) * 10,000).
//! - `query_cost dag ENGINE REPEATS`: builds the 100,000-query random DAG of
//!   `benches/query.rs` REPEATS times, each with a fresh engine. ENGINE is `serial`,
//!   `weft1` or `weft2`. Instructions per DAG = (Ir(R2) - Ir(R1)) / (R2 - R1).
//!
//! With no arguments (as a plain `cargo bench` runs it) it does nothing.

use std::collections::HashMap;
use std::hint::black_box;
use std::process::ExitCode;

use rustc_hash::FxHashMap;
use weft::query::{Cx, Engine};

#[path = "common/workloads.rs"]
mod workloads;
use workloads::*;

fn pool(threads: usize) -> weft::ThreadPool {
    weft::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn hits(imp: &str, passes: u64) -> Option<u64> {
    let keys = hit_keys();
    let keys = &keys[..];
    let mut sum = 0u64;
    match imp {
        "weft" | "serial" | "dense" => {
            let engine = if imp == "serial" {
                Engine::serial()
            } else {
                Engine::new()
            };
            let work = move || {
                let s = engine
                    .run(|cx| {
                        let mut s = 0u64;
                        for _ in 0..=passes {
                            for k in keys {
                                s = s.wrapping_add(if imp == "dense" {
                                    cx.get::<DenseLeaf>(black_box(k))
                                } else {
                                    cx.get::<Leaf>(black_box(k))
                                });
                            }
                        }
                        s
                    })
                    .unwrap();
                (engine, s)
            };
            sum = if imp == "serial" {
                work().1
            } else {
                pool(1).install(work).1
            };
        }
        "hashmap_std" => {
            let map: HashMap<u32, u64> = keys.iter().map(|&k| (k, leaf_value(k))).collect();
            for _ in 0..=passes {
                for k in keys {
                    sum = sum.wrapping_add(map[black_box(k)]);
                }
            }
        }
        "hashmap_fx" => {
            let map: FxHashMap<u32, u64> = keys.iter().map(|&k| (k, leaf_value(k))).collect();
            for _ in 0..=passes {
                for k in keys {
                    sum = sum.wrapping_add(map[black_box(k)]);
                }
            }
        }
        "salsa" => {
            let db = salsa::DatabaseImpl::default();
            let inputs: Vec<LeafInput> = keys.iter().map(|&k| LeafInput::new(&db, k)).collect();
            for _ in 0..=passes {
                for &i in &inputs {
                    sum = sum.wrapping_add(salsa_leaf(&db, black_box(i)));
                }
            }
        }
        _ => return None,
    }
    Some(sum)
}

fn dag(engine: &str, repeats: u64) -> Option<u64> {
    let keys: Vec<u32> = (0..DAG_N).collect();
    let keys = &keys[..];
    let all = |cx: &Cx<'_>| {
        cx.par_map(keys, |cx, k| cx.get::<DagNode>(k))
            .into_iter()
            .fold(0, u64::wrapping_add)
    };
    let mut sum = 0;
    for _ in 0..repeats {
        sum = match engine {
            "serial" => Engine::serial().run(all).unwrap(),
            "weft1" | "weft2" => {
                let pool = pool(if engine == "weft1" { 1 } else { 2 });
                let sum = pool.install(|| Engine::new().run(all).unwrap());
                if std::env::var_os("QUERY_COST_STATS").is_some() {
                    eprintln!("{:?}", pool.stats());
                }
                sum
            }
            _ => return None,
        };
    }
    Some(sum)
}

fn main() -> ExitCode {
    let Some(args) = driver_args() else {
        // Run by a plain `cargo bench`: nothing to measure, stay quiet.
        return ExitCode::SUCCESS;
    };
    let result = match args.as_slice() {
        [mode, imp, n] => match (mode.as_str(), n.parse::<u64>()) {
            ("hit", Ok(n)) => hits(imp, n),
            ("dag", Ok(n)) => dag(imp, n),
            _ => None,
        },
        _ => None,
    };
    match result {
        Some(sum) => {
            println!("{} sum={sum}", args.join(" "));
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("usage: query_cost hit weft|serial|hashmap_std|hashmap_fx|salsa PASSES");
            eprintln!("       query_cost dag serial|weft1|weft2 REPEATS");
            ExitCode::from(2)
        }
    }
}
