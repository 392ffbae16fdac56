//! Lexer and parser on arbitrary bytes: must never panic, hang or overflow the stack.
#![no_main]

use compiler_demo::parser::parse_file;
use compiler_demo::source::FileId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_file(FileId(0), &text);
});
