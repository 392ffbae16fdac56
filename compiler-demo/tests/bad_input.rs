//! Bad input never panics, hangs or overflows the stack: random bytes, token soup and
//! randomly mutated valid programs go through the lexer and parser, and through the
//! whole front-end, under a watchdog.

mod common;

use common::{config, generated};
use compiler_demo::driver::{execute_sources, Command, Mode};
use compiler_demo::gen::SplitMix64;
use compiler_demo::parser::parse_file;
use compiler_demo::source::{FileId, SourceFile, SourceMap};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Runs `f` on a thread with a small stack and fails if it takes longer than `secs`.
fn watchdog(secs: u64, name: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(name.into())
        .stack_size(2 << 20)
        .spawn(move || {
            f();
            let _ = tx.send(());
        })
        .expect("thread spawns");
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => handle.join().expect("no panic"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The closure panicked; joining re-raises it with its message.
            if let Err(p) = handle.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: hung for {secs}s"),
    }
}

fn check_text(text: Vec<u8>) {
    let sources = SourceMap {
        files: vec![Arc::new(SourceFile::new("main.wd".into(), text))],
    };
    let out = execute_sources(&sources, Mode::Serial, &Command::Check);
    assert!(
        out.code == 0 || out.code == 1,
        "unexpected exit {}: {}",
        out.code,
        out.stderr
    );
}

const VOCAB: &[&str] = &[
    "fn",
    "struct",
    "const",
    "type",
    "use",
    "pub",
    "let",
    "mut",
    "if",
    "else",
    "while",
    "return",
    "true",
    "false",
    "as",
    "crate",
    "self",
    "super",
    "(",
    ")",
    "{",
    "}",
    ",",
    ";",
    ":",
    "::",
    ".",
    "->",
    "*",
    "+",
    "-",
    "/",
    "%",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "!",
    "x",
    "S",
    "main",
    "i64",
    "bool",
    "0",
    "9223372036854775807",
    "/*",
    "*/",
    "//",
    "\n",
    "é",
    "$",
];

#[test]
fn random_bytes_never_crash_the_parser() {
    watchdog(60, "random-bytes", || {
        let mut rng = SplitMix64::new(0xbad);
        for _ in 0..3000 {
            let len = rng.below(300) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_file(FileId(0), &text);
        }
    });
}

#[test]
fn token_soup_never_crashes_the_front_end() {
    watchdog(60, "token-soup", || {
        let mut rng = SplitMix64::new(0x50);
        for _ in 0..1500 {
            let n = rng.below(80) as usize;
            let mut text = String::new();
            for _ in 0..n {
                text.push_str(VOCAB[rng.below(VOCAB.len() as u64) as usize]);
                text.push(' ');
            }
            check_text(text.into_bytes());
        }
    });
}

#[test]
fn mutated_programs_never_crash_the_front_end() {
    watchdog(60, "mutations", || {
        let (sources, _, _) = generated(&config(1, 24, 77, 0, 0));
        let programs: Vec<Vec<u8>> = sources
            .files
            .iter()
            .map(|f| f.text().as_bytes().to_vec())
            .chain([include_bytes!("../examples/hello/math.wd").to_vec()])
            .collect();
        let mut rng = SplitMix64::new(0x5eed);
        for round in 0..600 {
            let mut text = programs[round % programs.len()].clone();
            for _ in 0..=rng.below(4) {
                mutate(&mut rng, &mut text);
            }
            check_text(text);
        }
    });
}

fn mutate(rng: &mut SplitMix64, text: &mut Vec<u8>) {
    let len = text.len().max(1) as u64;
    let at = rng.below(len) as usize;
    let span = (rng.below(40) as usize).min(text.len() - at.min(text.len()));
    match rng.below(5) {
        0 => {
            text.drain(at..at + span);
        }
        1 => {
            let tok = VOCAB[rng.below(VOCAB.len() as u64) as usize].as_bytes();
            let at = at.min(text.len());
            text.splice(at..at, tok.iter().copied());
        }
        2 => {
            let chunk: Vec<u8> = text[at..at + span].to_vec();
            text.splice(at..at, chunk);
        }
        3 => {
            if at < text.len() {
                text[at] = rng.next_u64() as u8;
            }
        }
        _ => {
            let b = rng.below(len) as usize;
            if at < text.len() && b < text.len() {
                text.swap(at, b);
            }
        }
    }
}

#[test]
fn deep_nesting_is_a_diagnostic_not_a_stack_overflow() {
    watchdog(60, "deep-nesting", || {
        let n = 50_000;
        let shapes = [
            format!("fn main() -> i64 {{ {}1{} }}", "(".repeat(n), ")".repeat(n)),
            format!("fn main() -> i64 {{ {} }}", "{".repeat(n)),
            format!("fn main() -> i64 {{ {}1 }}", "-".repeat(n)),
            format!("fn main() -> i64 {{ {}1 }}", "!".repeat(n)),
            format!("fn main() -> i64 {{ 1{} }}", " + 1".repeat(n)),
            format!("fn main() -> i64 {{ x{} }}", ".f".repeat(n)),
            format!("fn main() -> i64 {{ {} }}", "f(".repeat(n)),
            format!("fn main() -> i64 {{ {} }}", "if true { ".repeat(n)),
            format!("fn main() -> i64 {{ {}1 }}", "return ".repeat(n)),
            format!("fn main() -> i64 {{ {}1 }}", "x = ".repeat(n)),
            format!("const C: i64 = {};", "S { a: ".repeat(n)),
            format!("fn main() -> i64 {{ {} }}", "while true { ".repeat(n)),
        ];
        for text in shapes {
            let sources = SourceMap {
                files: vec![Arc::new(SourceFile::new(
                    "main.wd".into(),
                    text.into_bytes(),
                ))],
            };
            let out = execute_sources(&sources, Mode::Serial, &Command::Check);
            assert_eq!(out.code, 1, "{}", out.stderr);
        }
    });
}

#[test]
fn programs_at_the_nesting_limits_check_and_run() {
    watchdog(60, "at-limits", || {
        let chain = format!("1{}", " + 1".repeat(250));
        let parens = format!("{}1{}", "(".repeat(60), ")".repeat(60));
        let blocks = format!("{}2{}", "{ ".repeat(30), " }".repeat(30));
        let text = format!(
            "fn main() -> i64 {{\n    let a = {chain};\n    let b = {parens};\n    let c = {blocks};\n    a + b + c\n}}\n"
        );
        let sources = SourceMap {
            files: vec![Arc::new(SourceFile::new(
                "main.wd".into(),
                text.into_bytes(),
            ))],
        };
        let out = execute_sources(&sources, Mode::Serial, &Command::Run);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, "254\n");
    });
}

#[test]
fn a_long_else_if_chain_is_not_nesting() {
    watchdog(60, "else-if-chain", || {
        let arms = 20_000;
        let mut text = String::from("fn main() -> i64 {\n    let n = 19999;\n    if n == 0 { 0 }");
        for i in 1..arms {
            text.push_str(&format!(" else if n == {i} {{ {i} }}"));
        }
        text.push_str(" else { -1 }\n}\n");
        let sources = SourceMap {
            files: vec![Arc::new(SourceFile::new(
                "main.wd".into(),
                text.into_bytes(),
            ))],
        };
        let out = execute_sources(&sources, Mode::Serial, &Command::Run);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, "19999\n");
    });
}

/// Long chains of items resolved through one another: the serial reference engine
/// (which runs each check on a worker-deep stack) handles what every `--threads` mode
/// handles, with the same output.
#[test]
fn long_chains_check_the_same_serially_and_in_parallel() {
    watchdog(120, "long-chains", || {
        let chains = [
            // 3,000 chained `use` renames.
            (0..3000)
                .map(|i| format!("use self::u{i} as u{};\n", i + 1))
                .chain(["fn u0() -> i64 { 7 }\nfn main() -> i64 { u3000() }\n".to_string()])
                .collect::<String>(),
            // 5,000 constants, each defined by the next.
            (0..5000)
                .map(|i| format!("const C{i}: i64 = C{} + 1;\n", i + 1))
                .chain(["const C5000: i64 = 1;\nfn main() -> i64 { C0 }\n".to_string()])
                .collect::<String>(),
            // 10,000 type aliases, each naming the next.
            (0..10_000)
                .map(|i| format!("type T{i} = T{};\n", i + 1))
                .chain(["type T10000 = i64;\nfn main() -> T0 { 3 }\n".to_string()])
                .collect::<String>(),
        ];
        for text in chains {
            let sources = SourceMap {
                files: vec![Arc::new(SourceFile::new(
                    "main.wd".into(),
                    text.into_bytes(),
                ))],
            };
            let serial = execute_sources(&sources, Mode::Serial, &Command::Run);
            let parallel = execute_sources(&sources, Mode::Parallel(2), &Command::Run);
            assert_eq!(serial.code, 0, "{}", serial.stderr);
            assert_eq!(
                (&serial.stdout, &serial.stderr),
                (&parallel.stdout, &parallel.stderr)
            );
        }
    });
}
