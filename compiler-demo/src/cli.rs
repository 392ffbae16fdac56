//! Command-line interface: parses arguments with clap and dispatches to the driver or
//! the generator. Usage errors (clap's and ours) exit with 2; `--help` documents every
//! argument and the exit codes.

use clap::{Args, Parser, Subcommand};
use compiler_demo::driver::{self, Command, Mode, Outcome, TraceFiles};
use compiler_demo::gen::{self, GenConfig};
use std::io::Write;
use std::path::PathBuf;

/// Shown after every help page.
const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    compile errors (the diagnostics are on stderr)
  2    usage or I/O errors (naming the path)
  101  run-time error in `run` (overflow, division by zero, call depth)";

#[derive(Parser)]
#[command(
    name = "compiler-demo",
    version,
    about = "A compiler front-end for a small Rust-like language, running on weft",
    long_about = "A compiler front-end for a small Rust-like language, running on weft: \
                  every stage is a query, files are parsed and bodies checked in parallel. \
                  The language is described in LANGUAGE.md.",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// The program directory, as every command but `gen` takes it.
#[derive(Args)]
struct ProgramArgs {
    /// Program directory: each `.wd` file in it is a module (`main.wd` is the crate
    /// root, subdirectories nest; hidden files are skipped)
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

#[derive(Args)]
struct EngineArgs {
    /// Worker threads for the query engine, 1..=512 [default: $WEFT_NUM_THREADS if set,
    /// else one per CPU]; the output is the same for every value
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=512))]
    threads: Option<u16>,
    /// Use the serial reference engine.
    #[arg(long, hide = true, conflicts_with = "threads")]
    serial: bool,
}

impl EngineArgs {
    fn mode(&self) -> Mode {
        match (self.serial, self.threads) {
            (true, _) => Mode::Serial,
            (false, n) => Mode::Parallel(n.map_or(0, usize::from)),
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Check a program and print its diagnostics.
    #[command(after_help = EXIT_CODES)]
    Check {
        #[command(flatten)]
        program: ProgramArgs,
        #[command(flatten)]
        engine: EngineArgs,
        /// Also write an HTML page of the pool's timings (parallel engine only)
        #[arg(long, value_name = "FILE.html")]
        timings: Option<PathBuf>,
        /// Also write a Chrome trace of the pool's timings (parallel engine only)
        #[arg(long, value_name = "FILE.json")]
        trace: Option<PathBuf>,
        /// Keep checking: after the first check, check again whenever a file under DIR
        /// changes, re-executing only what the change affects, until Ctrl-C (exit 0)
        #[arg(long, conflicts_with_all = ["timings", "trace"])]
        watch: bool,
    },
    /// Check a program and write its linked bytecode listing.
    #[command(after_help = EXIT_CODES)]
    Build {
        #[command(flatten)]
        program: ProgramArgs,
        /// File to write the bytecode listing to (only when the program has no errors)
        #[arg(short = 'o', value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Check, lower and interpret `main`, printing its result.
    #[command(after_help = EXIT_CODES)]
    Run {
        #[command(flatten)]
        program: ProgramArgs,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Write a generated program whose result is known (and that result to stdout).
    #[command(after_help = EXIT_CODES)]
    Gen {
        /// Directory to write the program into: new, or empty
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Modules to generate, 1..=100000
        #[arg(long, value_name = "M", value_parser = clap::value_parser!(u32).range(1..=i64::from(gen::MAX_MODULES)))]
        modules: u32,
        /// Items per module (constants, structs, aliases and functions in turn),
        /// 1..=10000; modules times items at most 2000000
        #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=i64::from(gen::MAX_ITEMS)))]
        items: u32,
        /// Seed of the generator: the same seed writes the same program
        #[arg(long, value_name = "S")]
        seed: u64,
        /// Inject this many alias, struct and const cycles, 0..=100000 (one diagnostic
        /// each)
        #[arg(long, value_name = "C", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=i64::from(gen::MAX_FAULTS)))]
        cycles: u32,
        /// Inject this many type errors, 0..=100000 (one diagnostic each)
        #[arg(long, value_name = "E", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=i64::from(gen::MAX_FAULTS)))]
        errors: u32,
    },
}

fn dispatch(cli: Cli) -> Outcome {
    match cli.command {
        Cmd::Check {
            program,
            engine,
            timings,
            trace,
            watch: _,
        } => {
            let files = TraceFiles {
                chrome_json: trace,
                html: timings,
            };
            driver::execute_traced(&program.dir, engine.mode(), &Command::Check, &files)
        }
        Cmd::Build {
            program,
            output,
            engine,
        } => driver::execute(&program.dir, engine.mode(), &Command::Build(output)),
        Cmd::Run { program, engine } => driver::execute(&program.dir, engine.mode(), &Command::Run),
        Cmd::Gen {
            dir,
            modules,
            items,
            seed,
            cycles,
            errors,
        } => {
            let config = GenConfig {
                modules,
                items,
                seed,
                cycles,
                errors,
            };
            gen::write(&dir, &config)
        }
    }
}

/// Runs the command line and returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    // `check --watch` prints as it goes; every other command prints one outcome.
    if let Cmd::Check {
        program,
        engine,
        watch: true,
        ..
    } = &cli.command
    {
        return crate::watch::run(&program.dir, engine.mode());
    }
    let outcome = dispatch(cli);
    // A closed pipe is not worth a panic; the exit code still tells the story.
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    outcome.code
}
