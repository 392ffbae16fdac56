//! End to end through the real binary: `gen` writes a program and its expected result;
//! `run` must print exactly that. Also the CLI's exit codes.

mod common;

use common::{cleanup, demo_with_timeout, scratch};
use std::path::Path;
use std::process::{Command, Output};

fn demo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_compiler-demo"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn gen_then_run_prints_the_expected_value() {
    for seed in [11u64, 12, 13, 14] {
        let dir = scratch(&format!("e2e-{seed}"));
        let d = dir.to_string_lossy().into_owned();
        let seed_s = seed.to_string();
        let g = demo(&[
            "gen",
            &d,
            "--modules",
            "6",
            "--items",
            "16",
            "--seed",
            &seed_s,
        ]);
        assert!(g.status.success(), "{}", text(&g.stderr));
        let expected = std::fs::read_to_string(dir.join("expected_output.txt")).expect("written");
        assert_eq!(text(&g.stdout), expected);
        for threads in ["1", "2"] {
            let r = demo(&["run", &d, "--threads", threads]);
            assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
            assert_eq!(text(&r.stdout), expected, "seed {seed}");
        }
        cleanup(&dir);
    }
}

#[test]
fn injected_faults_give_the_expected_diagnostic_count() {
    let dir = scratch("faults");
    let d = dir.to_string_lossy().into_owned();
    let g = demo(&[
        "gen",
        &d,
        "--modules",
        "5",
        "--items",
        "12",
        "--seed",
        "9",
        "--cycles",
        "3",
        "--errors",
        "2",
    ]);
    assert!(g.status.success());
    let expected: usize = std::fs::read_to_string(dir.join("expected_diagnostics.txt"))
        .expect("written")
        .trim()
        .parse()
        .expect("a number");
    assert_eq!(expected, 5);
    let c = demo(&["check", &d]);
    assert_eq!(c.status.code(), Some(1));
    let stderr = text(&c.stderr);
    assert_eq!(
        stderr.matches("\nerror[").count() + usize::from(stderr.starts_with("error[")),
        expected,
        "{stderr}"
    );
    // Alias and const cycles are E0391; the struct cycle is E0072 (infinite size).
    assert_eq!(stderr.matches("cycle detected when").count(), 2);
    assert_eq!(stderr.matches("error[E0072]: recursive types").count(), 1);
    let serial = demo(&["check", &d, "--serial"]);
    assert_eq!(serial.stderr, c.stderr);
    cleanup(&dir);
}

#[test]
fn bundled_example_runs() {
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let r = demo(&["run", &hello.to_string_lossy()]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    assert_eq!(text(&r.stdout), "6900\n");
    let out = scratch("build");
    std::fs::create_dir_all(&out).expect("scratch dir");
    let bc = out.join("hello.bc");
    let b = demo(&[
        "build",
        &hello.to_string_lossy(),
        "-o",
        &bc.to_string_lossy(),
    ]);
    assert_eq!(b.status.code(), Some(0), "{}", text(&b.stderr));
    let listing = std::fs::read_to_string(&bc).expect("bytecode written");
    assert!(listing.starts_with("; weft compiler-demo bytecode v1\n"));
    cleanup(&out);
}

#[test]
fn usage_and_io_errors_exit_2_naming_the_path() {
    let missing = demo(&["check", "/definitely/not/here"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/definitely/not/here"));
    let no_root = scratch("noroot");
    std::fs::create_dir_all(&no_root).expect("scratch dir");
    let r = demo(&["check", &no_root.to_string_lossy()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("main.wd"));
    cleanup(&no_root);
    assert_eq!(demo(&["check"]).status.code(), Some(2));
    assert_eq!(demo(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(demo(&["run", ".", "--threads", "0"]).status.code(), Some(2));
}

#[test]
fn absurd_or_conflicting_arguments_are_usage_errors() {
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let hello = hello.to_string_lossy();
    let both = demo(&["check", &hello, "--serial", "--threads", "4"]);
    assert_eq!(both.status.code(), Some(2), "{}", text(&both.stderr));
    let bogus = demo(&["check", &hello, "--bogus"]);
    assert_eq!(bogus.status.code(), Some(2));

    let dir = scratch("gen-limits");
    let d = dir.to_string_lossy().into_owned();
    let gen = |extra: &[&str]| {
        let mut args = vec!["gen", &d, "--seed", "1"];
        args.extend_from_slice(extra);
        demo_with_timeout(&args, 20)
    };
    for (args, limit) in [
        (&["--modules", "4000000000", "--items", "4"][..], "100000"),
        (&["--modules", "4", "--items", "4000000000"][..], "10000"),
        (&["--modules", "100000", "--items", "10000"][..], "2000000"),
        (
            &["--modules", "4", "--items", "4", "--cycles", "4000000000"][..],
            "100000",
        ),
        (
            &["--modules", "4", "--items", "4", "--errors", "4000000000"][..],
            "100000",
        ),
    ] {
        let r = gen(args);
        let stderr = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(limit),
            "{args:?} should name the limit: {stderr}"
        );
        assert!(!dir.exists(), "{args:?} wrote files");
    }
    cleanup(&dir);
}

#[test]
fn help_describes_every_argument_and_the_exit_codes() {
    let exit_codes = ["Exit codes:", "  0 ", "  1 ", "  2 ", "  101 "];
    let top = demo(&["--help"]);
    assert_eq!(top.status.code(), Some(0));
    let top = text(&top.stdout);
    for needle in exit_codes {
        assert!(top.contains(needle), "`--help` lacks {needle:?}:\n{top}");
    }
    let wanted: [(&str, &[&str]); 4] = [
        (
            "check",
            &[
                "<DIR>  Program directory",
                "WEFT_NUM_THREADS",
                "1..=512",
                "--timings",
            ],
        ),
        (
            "build",
            &["<DIR>  Program directory", "-o <FILE>", "bytecode"],
        ),
        ("run", &["<DIR>  Program directory", "--threads"]),
        (
            "gen",
            &[
                "<DIR>  ",
                "--modules <M>",
                "--items <K>",
                "--seed <S>",
                "--cycles",
                "--errors",
                "100000",
            ],
        ),
    ];
    for (command, needles) in wanted {
        let r = demo(&[command, "--help"]);
        assert_eq!(r.status.code(), Some(0));
        let help = text(&r.stdout);
        for needle in needles.iter().chain(&exit_codes) {
            assert!(
                help.contains(needle),
                "`{command} --help` lacks {needle:?}:\n{help}"
            );
        }
        // Every argument has a description: no line that is just a name.
        for line in help
            .lines()
            .filter(|l| l.trim_start().starts_with(['-', '<']))
        {
            assert!(
                line.trim().contains("  "),
                "`{command} --help`: undocumented {line:?}"
            );
        }
    }
}
