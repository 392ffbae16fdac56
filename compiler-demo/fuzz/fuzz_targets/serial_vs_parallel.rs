//! Differential: a program of several files checks the same on the serial reference
//! engine and on a pool of 2 threads: byte-identical stdout and stderr, same exit code.
//!
//! The input is split at `0xFF` bytes (never part of UTF-8 text). The first piece is
//! `main.wd`; each later piece is a module file whose first byte picks its path from
//! `MODULE_PATHS` (nested modules, a directory without a file of its own, a name that is
//! not an identifier; the names the UI tests and the example use, so `scripts/fuzz.sh`
//! can seed from them), and whose other bytes are its text. A piece naming a path that is
//! already taken is dropped. Files are sorted by path, as `driver::load` sorts them.
#![no_main]

use compiler_demo::driver::{execute_sources, Command, Mode};
use compiler_demo::source::{SourceFile, SourceMap};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

const SEPARATOR: u8 = 0xFF;
const MAX_FILES: usize = 8;
const MODULE_PATHS: &[&str] = &[
    "a.wd",
    "b.wd",
    "a/b.wd",
    "a/c.wd",
    "b/a.wd",
    "c/d/e.wd",
    "p.wd",
    "p/q.wd",
    "p/q/r.wd",
    "inner.wd",
    "util.wd",
    "util/math.wd",
    "util/shapes.wd",
    "geometry.wd",
    "geometry/shapes.wd",
    "math.wd",
    "bad-name.wd",
];

fn program(data: &[u8]) -> SourceMap {
    let mut pieces = data.split(|&b| b == SEPARATOR);
    let mut files = vec![("main.wd".to_string(), pieces.next().unwrap_or(&[]).to_vec())];
    for piece in pieces {
        if files.len() == MAX_FILES {
            break;
        }
        let Some((&pick, text)) = piece.split_first() else {
            continue;
        };
        let path = MODULE_PATHS[pick as usize % MODULE_PATHS.len()];
        if files.iter().all(|(p, _)| p != path) {
            files.push((path.to_string(), text.to_vec()));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    SourceMap {
        files: files
            .into_iter()
            .map(|(path, text)| Arc::new(SourceFile::new(path, text)))
            .collect(),
    }
}

fuzz_target!(|data: &[u8]| {
    let sources = program(data);
    let serial = execute_sources(&sources, Mode::Serial, &Command::Check);
    assert!(
        serial.code == 0 || serial.code == 1,
        "serial exit {}: {}",
        serial.code,
        serial.stderr
    );
    let parallel = execute_sources(&sources, Mode::Parallel(2), &Command::Check);
    assert_eq!(serial.code, parallel.code, "exit codes differ");
    assert_eq!(serial.stdout, parallel.stdout, "stdout differs");
    assert_eq!(serial.stderr, parallel.stderr, "diagnostics differ");
});
