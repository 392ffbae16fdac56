//! The driver: reads a program directory, runs the queries on an engine, and produces
//! the text and exit code each command reports.
//!
//! Reading files happens here, before the engine starts: file texts are inputs. All
//! output is built as strings so the CLI and the tests see exactly the same bytes.

use crate::bytecode::Program;
use crate::diagnostics::{render, render_plain, Diag};
use crate::engine::Engine;
use crate::queries as q;
use crate::source::{FileId, SourceFile, SourceMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Exit code for compile errors.
pub const EXIT_COMPILE_ERROR: i32 = 1;
/// Exit code for usage and I/O errors.
pub const EXIT_USAGE: i32 = 2;
/// Exit code when the program compiled but failed at run time.
pub const EXIT_RUNTIME_ERROR: i32 = 101;

/// What a command prints and how it exits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Outcome {
    pub fn usage(message: String) -> Outcome {
        Outcome {
            stdout: String::new(),
            stderr: format!("error: {message}\n"),
            code: EXIT_USAGE,
        }
    }
}

/// How the queries are executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The parallel engine on a pool of this many threads (0: the pool's default).
    Parallel(usize),
    /// The serial reference engine.
    Serial,
}

/// Reads every `.wd` file under `dir`, sorted by relative path.
pub fn load(dir: &Path) -> Result<SourceMap, String> {
    let mut paths = Vec::new();
    collect_files(dir, dir, &mut paths)?;
    paths.sort();
    if !paths.iter().any(|(rel, _)| rel == "main.wd") {
        return Err(format!("`{}` has no crate root `main.wd`", dir.display()));
    }
    let mut map = SourceMap::default();
    for (rel, full) in paths {
        let bytes =
            std::fs::read(&full).map_err(|e| format!("cannot read `{}`: {e}", full.display()))?;
        map.files.push(Arc::new(SourceFile::new(rel, bytes)));
    }
    Ok(map)
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
        let path = entry.path();
        let meta = std::fs::metadata(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        if meta.is_dir() {
            collect_files(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "wd") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((rel.join("/"), path));
        }
    }
    Ok(())
}

/// Runs `f` on an engine loaded with `sources`, in the requested mode.
fn with_engine<R: Send>(
    sources: &SourceMap,
    mode: Mode,
    f: impl FnOnce(&Engine) -> R + Send,
) -> Result<R, String> {
    let setup = || {
        let mut engine = match mode {
            Mode::Serial => Engine::serial(),
            Mode::Parallel(_) => Engine::new(),
        };
        let list: Vec<String> = sources.files.iter().map(|f| f.path.clone()).collect();
        engine.set_input::<q::FileList>((), Arc::new(list));
        for (i, file) in sources.files.iter().enumerate() {
            engine.set_input::<q::SourceText>(FileId(i as u32), file.text.clone());
        }
        f(&engine)
    };
    match mode {
        Mode::Serial => Ok(setup()),
        Mode::Parallel(threads) => crate::pool::install(threads, setup),
    }
}

/// Checks a program: its sorted diagnostics, and its linked program when it has none.
pub fn compile(
    sources: &SourceMap,
    mode: Mode,
) -> Result<(Vec<Diag>, Option<Arc<Program>>), String> {
    let result = with_engine(sources, mode, |engine| {
        engine.run(|cx| {
            let diags = cx.get::<q::CrateDiagnostics>(&());
            let program = if diags.is_empty() {
                cx.get::<q::LinkedProgram>(&())
            } else {
                None
            };
            ((*diags).clone(), program)
        })
    })?;
    result.map_err(|e| format!("internal compiler error: {e}"))
}

/// What to do after checking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Check,
    Build(PathBuf),
    Run,
}

/// Runs `check`, `build` or `run` on the program in `dir`.
pub fn execute(dir: &Path, mode: Mode, command: &Command) -> Outcome {
    match load(dir) {
        Ok(sources) => execute_sources(&sources, mode, command),
        Err(e) => Outcome::usage(e),
    }
}

/// Runs `check`, `build` or `run` on an already loaded program.
pub fn execute_sources(sources: &SourceMap, mode: Mode, command: &Command) -> Outcome {
    let (diags, program) = match compile(sources, mode) {
        Ok(r) => r,
        Err(e) => return Outcome::usage(e),
    };
    if !diags.is_empty() {
        return Outcome {
            stdout: String::new(),
            stderr: render(sources, &diags),
            code: EXIT_COMPILE_ERROR,
        };
    }
    let ok = Outcome {
        stdout: String::new(),
        stderr: String::new(),
        code: 0,
    };
    let Some(program) = program else {
        return Outcome::usage("internal compiler error: no program was linked".into());
    };
    match command {
        Command::Check => ok,
        Command::Build(out) => match std::fs::write(out, program.listing()) {
            Ok(()) => ok,
            Err(e) => Outcome::usage(format!("cannot write `{}`: {e}", out.display())),
        },
        Command::Run => match crate::vm::run(&program) {
            Ok(v) => Outcome {
                stdout: format!("{v}\n"),
                ..ok
            },
            Err(e) => {
                let d = Diag::plain(format!("runtime error: {}", e.message)).at(e.span, "");
                Outcome {
                    stdout: String::new(),
                    stderr: render_plain(sources, &[d]),
                    code: EXIT_RUNTIME_ERROR,
                }
            }
        },
    }
}
