//! `check --trace FILE.json --timings FILE.html`: the files are written, and the check
//! prints and exits exactly as it does without them.

mod common;

use common::{cleanup, scratch};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn demo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_compiler-demo"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn check_with_timings(program: &Path, out: &Path) -> (Output, Output, PathBuf, PathBuf) {
    std::fs::create_dir_all(out).expect("scratch dir");
    let json = out.join("trace.json");
    let html = out.join("timings.html");
    let program = program.to_string_lossy();
    let plain = demo(&["check", &program, "--threads", "2"]);
    let traced = demo(&[
        "check",
        &program,
        "--threads",
        "2",
        "--trace",
        &json.to_string_lossy(),
        "--timings",
        &html.to_string_lossy(),
    ]);
    (plain, traced, json, html)
}

#[test]
fn check_writes_a_chrome_trace_and_a_timings_page() {
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let out = scratch("timings-hello");
    let (plain, traced, json, html) = check_with_timings(&hello, &out);
    assert_eq!(traced.status.code(), Some(0));
    assert_eq!(traced.stdout, plain.stdout);
    assert_eq!(traced.stderr, plain.stderr);
    let json = std::fs::read_to_string(json).expect("trace written");
    assert!(json.starts_with("{\"traceEvents\":["));
    assert!(json.contains("\"name\":\"parse\",\"cat\":\"query\",\"ph\":\"X\""));
    assert!(json.contains("\"name\":\"thread_name\""));
    let html = std::fs::read_to_string(html).expect("page written");
    assert!(html.contains("<g class=\"lane\" data-thread=\"0\">"));
    assert!(html.contains("<table class=\"summary\">"));
    assert!(html.contains("type_check"));
    cleanup(&out);
}

#[test]
fn timings_of_a_failing_check_show_its_cycles_and_keep_its_diagnostics() {
    let program = scratch("timings-cycles-src");
    let g = demo(&[
        "gen",
        &program.to_string_lossy(),
        "--modules",
        "4",
        "--items",
        "10",
        "--seed",
        "5",
        "--cycles",
        "2",
    ]);
    assert!(g.status.success());
    let out = scratch("timings-cycles");
    let (plain, traced, _, html) = check_with_timings(&program, &out);
    assert_eq!(traced.status.code(), Some(1));
    assert_eq!(traced.stderr, plain.stderr);
    let html = std::fs::read_to_string(html).expect("page written");
    assert!(
        html.contains("cycle detected when computing"),
        "no cycle listed"
    );
    cleanup(&out);
    cleanup(&program);
}

#[test]
fn an_unwritable_timings_path_exits_2_naming_it() {
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let r = demo(&[
        "check",
        &hello.to_string_lossy(),
        "--timings",
        "/definitely/not/here/t.html",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("/definitely/not/here/t.html"));
}

#[test]
fn an_unwritable_timings_path_keeps_the_diagnostics() {
    let program = scratch("timings-unwritable-src");
    std::fs::create_dir_all(&program).expect("scratch dir");
    std::fs::write(
        program.join("main.wd"),
        "fn main() -> i64 {\n    missing\n}\n",
    )
    .expect("written");
    let program_s = program.to_string_lossy();
    let plain = demo(&["check", &program_s]);
    assert_eq!(plain.status.code(), Some(1));
    let r = demo(&[
        "check",
        &program_s,
        "--timings",
        "/definitely/not/here/t.html",
    ]);
    assert_eq!(r.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&r.stderr);
    let diagnostics = String::from_utf8_lossy(&plain.stderr);
    // The diagnostics come first, exactly as without `--timings`, then the I/O error.
    assert!(stderr.starts_with(&*diagnostics), "{stderr}");
    let rest = &stderr[diagnostics.len()..];
    assert!(
        rest.starts_with("error: cannot write `/definitely/not/here/t.html`"),
        "{rest}"
    );
    cleanup(&program);
}
