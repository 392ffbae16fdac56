//! Output is byte-identical across thread counts and the serial engine, for generated
//! programs with and without injected cycles and errors.

mod common;

use common::{config, generated};
use compiler_demo::driver::{compile, execute_sources, Command, Mode};

const MODES: [Mode; 3] = [Mode::Parallel(1), Mode::Parallel(2), Mode::Parallel(8)];

fn assert_deterministic(modules: u32, items: u32, seed: u64, cycles: u32, errors: u32) {
    let (sources, expected, expected_diags) =
        generated(&config(modules, items, seed, cycles, errors));
    let command = Command::Run;
    let reference = execute_sources(&sources, Mode::Serial, &command);
    for mode in MODES {
        let outcome = execute_sources(&sources, mode, &command);
        assert_eq!(
            outcome, reference,
            "seed {seed}: {mode:?} differs from serial"
        );
    }
    let (diags, _) = compile(&sources, Mode::Serial).expect("compiles without internal error");
    assert_eq!(
        diags.len() as u32,
        expected_diags,
        "seed {seed}:\n{}",
        reference.stderr
    );
    if expected_diags == 0 {
        assert_eq!(reference.stdout, format!("{expected}\n"));
        assert_eq!(reference.code, 0);
    } else {
        assert_eq!(reference.code, 1);
    }
}

#[test]
fn clean_programs_agree_across_thread_counts() {
    for seed in [1, 2, 3] {
        assert_deterministic(12, 16, seed, 0, 0);
    }
}

#[test]
fn programs_with_cycles_agree_across_thread_counts() {
    for seed in [4, 5] {
        assert_deterministic(10, 12, seed, 6, 0);
    }
}

#[test]
fn programs_with_errors_and_cycles_agree_across_thread_counts() {
    for seed in [6, 7] {
        assert_deterministic(10, 12, seed, 3, 5);
    }
}
