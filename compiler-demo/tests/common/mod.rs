//! Helpers shared by the integration tests.

#![allow(dead_code)]

use compiler_demo::gen::{generate, GenConfig};
use compiler_demo::source::{SourceFile, SourceMap};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A generated program held in memory, with `main`'s value and the diagnostic count.
pub fn generated(config: &GenConfig) -> (SourceMap, i64, u32) {
    let (mut files, expected, diags) = generate(config);
    files.sort();
    let files = files
        .into_iter()
        .map(|(path, text)| Arc::new(SourceFile::new(path, text.into_bytes())))
        .collect();
    (SourceMap { files }, expected, diags)
}

pub fn config(modules: u32, items: u32, seed: u64, cycles: u32, errors: u32) -> GenConfig {
    GenConfig {
        modules,
        items,
        seed,
        cycles,
        errors,
    }
}

/// A fresh, empty scratch directory for one test; removed by `cleanup`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("compiler-demo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn cleanup(dir: &PathBuf) {
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs the binary, killing it and failing the test if it runs past `secs`, so a
/// regression to a hang fails instead of stalling the suite.
pub fn demo_with_timeout(args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_compiler-demo"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("wait works").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`compiler-demo {}` hung for {secs}s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output is collected")
}
