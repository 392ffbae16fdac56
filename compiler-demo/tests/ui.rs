//! UI tests: each case under `tests/ui/` is a program and the exact output it must give.
//!
//! A case is either `NAME.wd` (a one-file program, compiled as `main.wd`) or a directory
//! `NAME/` (a whole program). Beside it: `NAME.stderr`, `NAME.exit` and, when non-empty,
//! `NAME.stdout`. Cases whose name starts with `run-` are run; the others are checked.
//! Every case is compiled serially and at 1, 2 and 8 threads, and all must agree.
//!
//! `BLESS=1 cargo test --test ui` rewrites the expected files from the actual output.

use compiler_demo::driver::{execute_sources, load, Command, Mode, Outcome};
use compiler_demo::source::{SourceFile, SourceMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn cases(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .expect("tests/ui exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "wd"))
        .map(|p| {
            let name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, p)
        })
        .collect();
    out.sort();
    out
}

fn sources_of(path: &Path) -> SourceMap {
    if path.is_dir() {
        load(path).unwrap_or_else(|e| panic!("{e}"))
    } else {
        let bytes = fs::read(path).expect("case is readable");
        SourceMap {
            files: vec![Arc::new(SourceFile::new("main.wd".into(), bytes))],
        }
    }
}

fn compare(expected_path: &Path, actual: &str, bless: bool, failures: &mut Vec<String>) {
    let expected = fs::read_to_string(expected_path).unwrap_or_default();
    if expected == actual {
        return;
    }
    if bless {
        if actual.is_empty() {
            let _ = fs::remove_file(expected_path);
        } else {
            fs::write(expected_path, actual).expect("bless writes");
        }
    } else {
        failures.push(format!(
            "{} differs:\n--- expected\n{expected}\n+++ actual\n{actual}",
            expected_path.display()
        ));
    }
}

#[test]
fn ui() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let bless = std::env::var_os("BLESS").is_some_and(|v| v != "0");
    let mut failures = Vec::new();
    let all = cases(&root);
    assert!(
        all.len() > 20,
        "expected many UI cases, found {}",
        all.len()
    );
    for (name, path) in all {
        let sources = sources_of(&path);
        let command = if name.starts_with("run-") {
            Command::Run
        } else {
            Command::Check
        };
        let reference = execute_sources(&sources, Mode::Serial, &command);
        for mode in [Mode::Parallel(1), Mode::Parallel(2), Mode::Parallel(8)] {
            let other: Outcome = execute_sources(&sources, mode, &command);
            if other != reference {
                failures.push(format!(
                    "{name}: {mode:?} differs from serial:\n{other:?}\nvs\n{reference:?}"
                ));
            }
        }
        // `check` type-checks without keeping the typed IR, `build` keeps it and lowers:
        // their diagnostics must be the same, and a program `check` accepts must build.
        if command == Command::Check {
            let out =
                std::env::temp_dir().join(format!("weft-ui-{}-{name}.bc", std::process::id()));
            let built = execute_sources(&sources, Mode::Parallel(2), &Command::Build(out.clone()));
            let _ = fs::remove_file(&out);
            if (built.code, &built.stderr) != (reference.code, &reference.stderr) {
                failures.push(format!(
                    "{name}: build disagrees with check:\n{built:?}\nvs\n{reference:?}"
                ));
            }
        }
        let base = root.join(&name);
        compare(
            &base.with_extension("stderr"),
            &reference.stderr,
            bless,
            &mut failures,
        );
        compare(
            &base.with_extension("stdout"),
            &reference.stdout,
            bless,
            &mut failures,
        );
        compare(
            &base.with_extension("exit"),
            &format!("{}\n", reference.code),
            bless,
            &mut failures,
        );
    }
    assert!(
        failures.is_empty(),
        "{} UI failures:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
