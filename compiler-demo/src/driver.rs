//! The driver: reads a program directory, runs the queries on an engine, and produces
//! the text and exit code each command reports.
//!
//! Reading files happens here, before the engine starts: file texts are inputs. All
//! output is built as strings so the CLI and the tests see exactly the same bytes.

use crate::bytecode::Program;
use crate::diagnostics::{render, render_plain, Diag};
use crate::engine::Engine;
use crate::modtree::ModId;
use crate::queries as q;
use crate::source::{FileId, SourceFile, SourceMap};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use weft::trace::Trace;

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

/// Reads every `.wd` file under `dir`, sorted by relative path. Hidden files and
/// directories (names starting with `.`: editor lock files, `.git`) are not part of the
/// program. A `.wd` name that is not a regular file (a FIFO, a socket, a dangling
/// symlink) is an error naming it: it is never opened, so it cannot block.
pub fn load(dir: &Path) -> Result<SourceMap, String> {
    let mut paths = Vec::new();
    collect_files(dir, dir, &mut paths)?;
    paths.sort();
    if !paths.iter().any(|(rel, _)| rel == "main.wd") {
        return Err(format!("`{}` has no crate root `main.wd`", dir.display()));
    }
    let read = |(rel, full): &(String, PathBuf)| {
        let bytes =
            std::fs::read(full).map_err(|e| format!("cannot read `{}`: {e}", full.display()))?;
        Ok(Arc::new(SourceFile::new(rel.clone(), bytes)))
    };
    // On a pool (the parallel engine's, before it starts), the files are read side by
    // side; the first error in path order is reported either way.
    let files: Vec<Result<Arc<SourceFile>, String>> = if weft::current_thread_index().is_some() {
        weft::par_map(&paths, read)
    } else {
        paths.iter().map(read).collect()
    };
    Ok(SourceMap {
        files: files.into_iter().collect::<Result<_, _>>()?,
    })
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        let is_module = path.extension().is_some_and(|e| e == "wd");
        // Follows symlinks. What cannot be inspected matters only if it is a module.
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if is_module => return Err(format!("cannot read `{}`: {e}", path.display())),
            Err(_) => continue,
        };
        if meta.is_dir() {
            collect_files(root, &path, out)?;
        } else if is_module {
            if !meta.is_file() {
                return Err(format!("`{}` is not a regular file", path.display()));
            }
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

/// Runs `f` on an engine loaded with `sources`, in the requested mode; with `trace`,
/// on a pool that records timings, which come back with the result.
/// Set by the command-line tool, which exits right after one compilation: freeing the
/// memo tables of a large program is a serial tail of the run (0.4 s of 1.06 s for 1,000
/// modules x 50 items at 2 threads, seen in `--timings`), so the process leaves that
/// memory to the operating system, as rustc does with its arenas. Library callers
/// (tests, benches) free it as usual.
static LEAK_ENGINE_AT_EXIT: AtomicBool = AtomicBool::new(false);

/// Makes every later compilation leave its engine's memory to the process exit.
pub fn leak_engine_at_exit() {
    LEAK_ENGINE_AT_EXIT.store(true, Ordering::Relaxed);
}

/// A program loaded by the driver, or one the caller already holds.
type Loaded<'a> = Cow<'a, SourceMap>;

/// Runs `f` on a fresh engine holding the program `load` returns, and returns that
/// program too. In parallel mode `load` runs on the engine's pool, before the engine
/// starts, so reading the files is parallel as well. `emit`: whether type checking
/// keeps the typed IR for lowering (the `EmitCode` input).
fn with_engine<'a, R: Send>(
    load: impl FnOnce() -> Result<Loaded<'a>, String> + Send,
    mode: Mode,
    trace: bool,
    emit: bool,
    f: impl FnOnce(&Engine) -> R + Send,
) -> Result<(Loaded<'a>, R, Option<Trace>), String> {
    let setup = || -> Result<(Loaded<'a>, R), String> {
        let loaded = load()?;
        let mut engine = match mode {
            Mode::Serial => Engine::serial(),
            Mode::Parallel(_) => Engine::new(),
        };
        set_inputs(&mut engine, &loaded, emit);
        let result = f(&engine);
        if LEAK_ENGINE_AT_EXIT.load(Ordering::Relaxed) {
            std::mem::forget(engine);
        }
        Ok((loaded, result))
    };
    let ((sources, result), recorded) = match mode {
        Mode::Serial => (setup()?, None),
        Mode::Parallel(threads) => {
            let (setup, recorded) = crate::pool::install_traced(threads, trace, setup)?;
            (setup?, recorded)
        }
    };
    Ok((sources, result, recorded))
}

/// Sets every input of a fresh engine for the program `sources` (`emit`: the `EmitCode`
/// input, true for `build` and `run`).
pub fn set_inputs(engine: &mut Engine, sources: &SourceMap, emit: bool) {
    engine.set_input::<q::FileList>((), file_list(sources));
    engine.set_input::<q::FileSizes>((), file_sizes(sources));
    engine.set_input::<q::EmitCode>((), emit);
    for (i, file) in sources.files.iter().enumerate() {
        engine.set_input::<q::SourceText>(FileId(i as u32), file.text.clone());
    }
}

/// The value of the `FileList` input for `sources`: every file's path, in id order.
pub fn file_list(sources: &SourceMap) -> Arc<Vec<String>> {
    Arc::new(sources.files.iter().map(|f| f.path.clone()).collect())
}

/// The value of the `FileSizes` input for `sources` (set along with `FileList`).
pub fn file_sizes(sources: &SourceMap) -> Arc<Vec<usize>> {
    Arc::new(
        sources
            .files
            .iter()
            .map(|f| f.text.as_ref().map_or(0, |t| t.len()))
            .collect(),
    )
}

/// Checks a program: its sorted diagnostics, and its linked program when it has none.
pub fn compile(
    sources: &SourceMap,
    mode: Mode,
) -> Result<(Vec<Diag>, Option<Arc<Program>>), String> {
    compile_traced(sources, mode, false, true).map(|(diags, program, _)| (diags, program))
}

/// Sorted diagnostics, the linked program when there are none, and the pool's timings
/// when they were asked for.
pub type Compiled = (Vec<Diag>, Option<Arc<Program>>, Option<Trace>);

/// [`compile`], also returning the pool's timings when `trace` is set (parallel mode);
/// `link`: as for [`compile_on`].
pub fn compile_traced(
    sources: &SourceMap,
    mode: Mode,
    trace: bool,
    link: bool,
) -> Result<Compiled, String> {
    let load = || Ok(Cow::Borrowed(sources));
    let (_, result, recorded) =
        with_engine(load, mode, trace, link, |engine| compile_on(engine, link))?;
    let (diags, program) = result?;
    Ok((diags, program, recorded))
}

/// Checks the program whose inputs `engine` holds (on the current pool, for a parallel
/// engine): its sorted diagnostics, and, if `link` is set, its linked program when it
/// has none (which needs the `EmitCode` input set). `check` does not link: lowering
/// finds no errors, so (like `cargo check` skipping code generation) it would only cost
/// time and memory.
pub fn compile_on(
    engine: &Engine,
    link: bool,
) -> Result<(Vec<Diag>, Option<Arc<Program>>), String> {
    engine
        .run(|cx| {
            // Every module's diagnostics first, side by side. When an incremental engine
            // finds their merge unchanged, it verifies what the merge read one memo after
            // another; asked for from here, the modules' memos are verified in parallel
            // instead. A fresh engine computes the same either way.
            let tree = cx.get_ref::<q::ModuleTree>(&());
            let modules: Vec<ModId> = (0..tree.modules.len() as u32).map(ModId).collect();
            cx.par_for_each(&modules, |cx, m| {
                cx.get_ref::<q::ModuleDiagnostics>(m);
            });
            let diags = cx.get::<q::CrateDiagnostics>(&());
            let program = if link && diags.is_empty() {
                cx.get::<q::LinkedProgram>(&())
            } else {
                None
            };
            ((*diags).clone(), program)
        })
        .map_err(|e| format!("internal compiler error: {e}"))
}

/// Where to write the timings of a run (`--trace`, `--timings`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceFiles {
    /// A Chrome trace (JSON) for Perfetto or `chrome://tracing`.
    pub chrome_json: Option<PathBuf>,
    /// A self-contained HTML timings page.
    pub html: Option<PathBuf>,
}

impl TraceFiles {
    fn wanted(&self) -> bool {
        self.chrome_json.is_some() || self.html.is_some()
    }

    fn write(&self, trace: &Trace) -> Result<(), String> {
        let cannot =
            |path: &Path, e: std::io::Error| format!("cannot write `{}`: {e}", path.display());
        if let Some(path) = &self.chrome_json {
            trace.write_chrome_json(path).map_err(|e| cannot(path, e))?;
        }
        if let Some(path) = &self.html {
            trace.write_html(path).map_err(|e| cannot(path, e))?;
        }
        Ok(())
    }
}

/// What to do after checking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Check,
    Build(PathBuf),
    Run,
}

impl Command {
    /// Whether the command needs the linked program (`check` needs only diagnostics).
    pub fn links(&self) -> bool {
        !matches!(self, Command::Check)
    }
}

/// Runs `check`, `build` or `run` on the program in `dir`.
pub fn execute(dir: &Path, mode: Mode, command: &Command) -> Outcome {
    execute_traced(dir, mode, command, &TraceFiles::default())
}

/// [`execute`], writing the pool's timings to `files` (parallel mode only). The
/// command prints what it prints without them; only a failed write changes that.
pub fn execute_traced(dir: &Path, mode: Mode, command: &Command, files: &TraceFiles) -> Outcome {
    execute_loaded(|| load(dir).map(Cow::Owned), mode, command, files)
}

/// Runs `check`, `build` or `run` on an already loaded program.
pub fn execute_sources(sources: &SourceMap, mode: Mode, command: &Command) -> Outcome {
    execute_sources_traced(sources, mode, command, &TraceFiles::default())
}

/// [`execute_sources`], writing the pool's timings to `files`.
pub fn execute_sources_traced(
    sources: &SourceMap,
    mode: Mode,
    command: &Command,
    files: &TraceFiles,
) -> Outcome {
    execute_loaded(|| Ok(Cow::Borrowed(sources)), mode, command, files)
}

/// [`execute_traced`] and [`execute_sources_traced`]: runs `command` on the program
/// `load` returns (on the engine's pool, in parallel mode).
fn execute_loaded<'a>(
    load: impl FnOnce() -> Result<Loaded<'a>, String> + Send,
    mode: Mode,
    command: &Command,
    files: &TraceFiles,
) -> Outcome {
    if files.wanted() && mode == Mode::Serial {
        return Outcome::usage("--trace and --timings need the parallel engine".into());
    }
    let link = command.links();
    let compiled = with_engine(load, mode, files.wanted(), link, |engine| {
        compile_on(engine, link)
    });
    let (sources, result, recorded) = match compiled {
        Ok(r) => r,
        Err(e) => return Outcome::usage(e),
    };
    let (diags, program) = match result {
        Ok(r) => r,
        Err(e) => return Outcome::usage(e),
    };
    let mut outcome = finish(&sources, command, &diags, program);
    // A trace that cannot be written is an I/O error after everything else is said.
    if let Some(Err(e)) = recorded.as_ref().map(|t| files.write(t)) {
        outcome.stderr.push_str(&Outcome::usage(e).stderr);
        outcome.code = EXIT_USAGE;
    }
    outcome
}

/// What a command prints once the program is compiled: `diags` and `program` as
/// [`compile_on`] returns them (linked if the command [links](Command::links)).
pub fn finish(
    sources: &SourceMap,
    command: &Command,
    diags: &[Diag],
    program: Option<Arc<Program>>,
) -> Outcome {
    if !diags.is_empty() {
        return Outcome {
            stdout: String::new(),
            stderr: render(sources, diags),
            code: EXIT_COMPILE_ERROR,
        };
    }
    let ok = Outcome {
        stdout: String::new(),
        stderr: String::new(),
        code: 0,
    };
    if !command.links() {
        return ok;
    }
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
