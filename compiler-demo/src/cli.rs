//! Command-line interface: parses arguments with clap and dispatches to the driver or
//! the generator. Usage errors (clap's and ours) exit with 2.

use clap::{Args, Parser, Subcommand};
use compiler_demo::driver::{self, Command, Mode, Outcome, TraceFiles};
use compiler_demo::gen::{self, GenConfig};
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "compiler-demo",
    version,
    about = "A compiler front-end running on weft"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args)]
struct EngineArgs {
    /// Worker threads for the query engine.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=512))]
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
    Check {
        dir: PathBuf,
        #[command(flatten)]
        engine: EngineArgs,
        /// Write an HTML timings page.
        #[arg(long, value_name = "FILE.html")]
        timings: Option<PathBuf>,
        /// Write a Chrome trace.
        #[arg(long, value_name = "FILE.json")]
        trace: Option<PathBuf>,
    },
    /// Check a program and write its bytecode.
    Build {
        dir: PathBuf,
        #[arg(short = 'o', value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Check, lower and interpret `main`, printing its result.
    Run {
        dir: PathBuf,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Write a generated program whose result is known.
    Gen {
        dir: PathBuf,
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(gen::MAX_MODULES)))]
        modules: u32,
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(gen::MAX_ITEMS)))]
        items: u32,
        #[arg(long)]
        seed: u64,
        /// Inject this many alias, struct and const cycles.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=i64::from(gen::MAX_FAULTS)))]
        cycles: u32,
        /// Inject this many type errors.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=i64::from(gen::MAX_FAULTS)))]
        errors: u32,
    },
}

fn dispatch(cli: Cli) -> Outcome {
    match cli.command {
        Cmd::Check {
            dir,
            engine,
            timings,
            trace,
        } => {
            let files = TraceFiles {
                chrome_json: trace,
                html: timings,
            };
            driver::execute_traced(&dir, engine.mode(), &Command::Check, &files)
        }
        Cmd::Build {
            dir,
            output,
            engine,
        } => driver::execute(&dir, engine.mode(), &Command::Build(output)),
        Cmd::Run { dir, engine } => driver::execute(&dir, engine.mode(), &Command::Run),
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
    let outcome = dispatch(cli);
    // A closed pipe is not worth a panic; the exit code still tells the story.
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    outcome.code
}
