//! The whole front-end (serial engine) on an arbitrary one-file program.
#![no_main]

use compiler_demo::driver::{execute_sources, Command, Mode};
use compiler_demo::source::{SourceFile, SourceMap};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let sources = SourceMap {
        files: vec![Arc::new(SourceFile::new("main.wd".into(), data.to_vec()))],
    };
    let out = execute_sources(&sources, Mode::Serial, &Command::Check);
    assert!(out.code == 0 || out.code == 1);
});
