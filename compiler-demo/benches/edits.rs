//! Edit benchmark (issue 16): what a re-check on one incremental engine (`session.rs`,
//! what `check --watch` runs) costs after an edit, against a check from scratch.
//!
//! `cargo bench -p compiler-demo --bench edits`
//!
//! On the generated 1,000-module x 50-item program (seed 42, the scaling report's large
//! workload), in memory (no file reading), at 2 threads, it measures:
//!
//! - a check from scratch: the batch engine `check` uses, and a session's first check
//!   (the incremental engine records what each query reads);
//! - re-checks after: nothing (no input differs); a comment appended to a file (its
//!   parse re-executes and compares equal, everything else is verified); a literal in
//!   one function body (same length); the same body made longer (the items after it
//!   in its file move); a signature (a parameter renamed) of a function used in about
//!   ten places; a module added (its file sorts last) and removed again.
//!
//! Each edit is applied and reverted `ROUNDS` times; both directions are samples of the
//! same kind. A sample is `Session::update` plus `Session::check` (rendering included);
//! dropping an engine is not timed. Prints a markdown table and writes it to
//! `target/weft-report/edits.md`, which `cargo bench --bench report` includes.
//!
//! Environment: `WEFT_EDITS_ROUNDS=N` (default 5), `WEFT_REPORT_SMOKE=1` (a tiny program
//! and one round, for CI: the figures mean nothing then).

use compiler_demo::driver::{self, Command, Mode};
use compiler_demo::engine::Engine;
use compiler_demo::gen::{generate, GenConfig};
use compiler_demo::session::Session;
use compiler_demo::source::{SourceFile, SourceMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft::query::Stats;

const THREADS: usize = 2;

/// A program as (path, text), sorted by path as `load` sorts files.
#[derive(Clone)]
struct Program {
    files: Vec<(String, String)>,
}

impl Program {
    fn sources(&self) -> SourceMap {
        let files = self
            .files
            .iter()
            .map(|(p, t)| Arc::new(SourceFile::new(p.clone(), t.clone().into_bytes())))
            .collect();
        SourceMap { files }
    }

    fn index(&self, path: &str) -> usize {
        self.files
            .iter()
            .position(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("no file `{path}`"))
    }

    fn edit(&self, path: &str, edit: impl FnOnce(&str) -> String) -> Program {
        let mut out = self.clone();
        let i = self.index(path);
        out.files[i].1 = edit(&self.files[i].1);
        out
    }

    fn with_file(&self, path: &str, text: &str) -> Program {
        let mut out = self.clone();
        out.files.push((path.to_string(), text.to_string()));
        out.files.sort();
        out
    }
}

/// Replaces the first `from` after the start of function `name` with `to`.
fn in_fn(text: &str, name: &str, from: &str, to: &str) -> String {
    let start = text
        .find(&format!("pub fn {name}("))
        .unwrap_or_else(|| panic!("no function `{name}`"));
    let at = start + text[start..].find(from).expect("the text to replace");
    format!("{}{to}{}", &text[..at], &text[at + from.len()..])
}

/// The function used in the number of places nearest to 10 (calls and imports, its
/// definition not counted; the more used of two as near), with that number and its
/// file.
fn fn_used_about_ten_times(program: &Program) -> (String, usize, String) {
    let mut uses: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut defined_in = std::collections::HashMap::new();
    for (path, text) in &program.files {
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            // Function names are `f{module}_{item}`; an import's alias adds `_via_m{n}`.
            let name = word.split("_via_").next().unwrap_or(word);
            if name.starts_with('f') && name[1..].contains('_') {
                *uses.entry(name).or_default() += 1;
            }
        }
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("pub fn ") {
                let name = rest.split('(').next().unwrap_or(rest);
                defined_in.insert(name.to_string(), path.clone());
            }
        }
    }
    let (name, count) = uses
        .into_iter()
        .filter(|(name, _)| defined_in.contains_key(*name) && *name != "main")
        .min_by_key(|&(name, count)| ((count as i64 - 11).abs(), std::cmp::Reverse(count), name))
        .expect("a function");
    let file = defined_in[name].clone();
    (name.to_string(), count - 1, file)
}

/// What one timed check cost.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    stats: Stats,
}

/// One row of the table.
struct Row {
    what: String,
    samples: Vec<Sample>,
    goal: Option<f64>,
}

/// A check from scratch on the batch engine, as `check` runs it (the engine's drop is
/// not timed).
fn batch_check(sources: &SourceMap, pool: &weft::ThreadPool) -> Duration {
    let mut engine = Engine::new();
    driver::set_inputs(&mut engine, sources, false);
    let started = Instant::now();
    let compiled = pool.install(|| driver::compile_on(&engine, false));
    let (diags, program) = compiled.expect("no internal error");
    let outcome = driver::finish(sources, &Command::Check, &diags, program);
    let wall = started.elapsed();
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    drop(engine);
    wall
}

/// Applies `forward` then `back` to the session `rounds` times, timing each.
fn edit_rounds(
    session: &mut Session,
    forward: &Program,
    back: &Program,
    rounds: usize,
) -> (Vec<Sample>, Vec<Sample>) {
    let mut there = Vec::new();
    let mut again = Vec::new();
    for _ in 0..rounds {
        there.push(timed_recheck(session, forward));
        again.push(timed_recheck(session, back));
    }
    (there, again)
}

fn timed_recheck(session: &mut Session, program: &Program) -> Sample {
    let sources = program.sources();
    let started = Instant::now();
    session.update(sources);
    let report = session.check();
    let wall = started.elapsed();
    assert_eq!(report.outcome.code, 0, "{}", report.outcome.stderr);
    Sample {
        wall,
        stats: report.stats,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let smoke = std::env::var("WEFT_REPORT_SMOKE").is_ok_and(|v| v == "1");
    let rounds = std::env::var("WEFT_EDITS_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(if smoke { 1 } else { 5 });
    let config = GenConfig {
        modules: if smoke { 40 } else { 1000 },
        items: if smoke { 12 } else { 50 },
        seed: 42,
        cycles: 0,
        errors: 0,
    };
    let load_before = load_average();
    let started = Instant::now();
    let (mut files, _, _) = generate(&config);
    files.sort();
    let start = Program { files };
    let sources = start.sources();
    let pool = compiler_demo::pool::build(THREADS, false).expect("a pool");

    // The edits. A function in a module halfway through, and the most used function.
    let middle = config.modules / 2;
    let body_file = format!("g{}/m{middle}.wd", middle / 32);
    let body_fn = format!("f{middle}_3");
    let literal = start.edit(&body_file, |t| in_fn(t, &body_fn, "% 1009", "% 1013"));
    let longer = start.edit(&body_file, |t| in_fn(t, &body_fn, "% 1009", "% 100003"));
    let comment = start.edit(&body_file, |t| format!("{t}// a comment\n"));
    let (sig_fn, sig_uses, sig_file) = fn_used_about_ten_times(&start);
    let signature = start.edit(&sig_file, |t| {
        let t = in_fn(t, &sig_fn, "(x: i64)", "(y: i64)");
        in_fn(&t, &sig_fn, "x % 1009", "y % 1009")
    });
    let added = start.with_file(
        "zz_added.wd",
        "pub fn added(x: i64) -> i64 {\n    x + 1\n}\n",
    );

    let mut rows = Vec::new();
    let batch: Vec<Sample> = (0..rounds)
        .map(|_| Sample {
            wall: batch_check(&sources, &pool),
            stats: Stats::default(),
        })
        .collect();
    rows.push(Row {
        what: "from scratch, batch engine (`check`)".into(),
        samples: batch,
        goal: None,
    });
    let mut firsts = Vec::new();
    for _ in 0..rounds {
        let mut session = Session::new(start.sources(), Mode::Parallel(THREADS)).expect("a pool");
        let started = Instant::now();
        let report = session.check();
        firsts.push(Sample {
            wall: started.elapsed(),
            stats: report.stats,
        });
    }
    rows.push(Row {
        what: "from scratch, incremental engine (first check of `--watch`)".into(),
        samples: firsts,
        goal: None,
    });

    let mut session = Session::new(start.sources(), Mode::Parallel(THREADS)).expect("a pool");
    session.check();
    let unchanged: Vec<Sample> = (0..2 * rounds)
        .map(|_| timed_recheck(&mut session, &start))
        .collect();
    rows.push(Row {
        what: "nothing changed (no input differs)".into(),
        samples: unchanged,
        goal: Some(3.0),
    });
    let (there, again) = edit_rounds(&mut session, &comment, &start, rounds);
    rows.push(Row {
        what: "a comment appended to one file".into(),
        samples: there.into_iter().chain(again).collect(),
        goal: Some(3.0),
    });
    let (there, again) = edit_rounds(&mut session, &literal, &start, rounds);
    rows.push(Row {
        what: format!("body edit, same length (a literal in `{body_fn}`)"),
        samples: there.into_iter().chain(again).collect(),
        goal: Some(5.0),
    });
    let (there, again) = edit_rounds(&mut session, &longer, &start, rounds);
    rows.push(Row {
        what: format!("body edit, length changed (`{body_fn}`; later items move)"),
        samples: there.into_iter().chain(again).collect(),
        goal: Some(5.0),
    });
    let (there, again) = edit_rounds(&mut session, &signature, &start, rounds);
    rows.push(Row {
        what: format!("signature edit (parameter of `{sig_fn}`, used in {sig_uses} places)"),
        samples: there.into_iter().chain(again).collect(),
        goal: Some(20.0),
    });
    let (there, again) = edit_rounds(&mut session, &added, &start, rounds);
    rows.push(Row {
        what: "module added (`zz_added.wd`, sorts last)".into(),
        samples: there,
        goal: None,
    });
    rows.push(Row {
        what: "module removed (the same)".into(),
        samples: again,
        goal: None,
    });
    drop(session);

    let table = render(&config, rounds, &rows, &load_before, smoke);
    println!("{table}");
    let out = target_dir().join("weft-report");
    std::fs::create_dir_all(&out).expect("create target/weft-report");
    std::fs::write(out.join("edits.md"), &table).expect("write edits.md");
    println!(
        "wrote {} ({:.1} s)",
        out.join("edits.md").display(),
        started.elapsed().as_secs_f64()
    );
}

fn render(
    config: &GenConfig,
    rounds: usize,
    rows: &[Row],
    load_before: &str,
    smoke: bool,
) -> String {
    let scratch = median(rows[0].samples.iter().map(|s| s.wall).collect());
    let mut t = String::new();
    writeln!(
        t,
        "## Re-checks after an edit (`cargo bench -p compiler-demo --bench edits`)\n"
    )
    .unwrap();
    writeln!(
        t,
        "{} modules x {} items (seed {}), in memory, {THREADS} threads, one incremental \
         engine kept across the edits (`Session`, as `check --watch`). Each edit applied \
         and reverted {rounds} time(s); a sample is `update` + `check`. Wall time is the \
         median (min-max); % is of the batch engine's check from scratch. Counts are the \
         engine's `Stats` for the median sample: queries executed, memos verified \
         unchanged, re-executions cut off early (value equal to the old one). Load \
         average before: {load_before}; after: {}.{}\n",
        config.modules,
        config.items,
        config.seed,
        load_average(),
        if smoke {
            " **Smoke mode** (`WEFT_REPORT_SMOKE=1`): tiny program, figures meaningless."
        } else {
            ""
        }
    )
    .unwrap();
    writeln!(
        t,
        "| what | wall (median, min-max) | % of from scratch | goal | executed | verified | cut off early |"
    )
    .unwrap();
    writeln!(t, "|---|---:|---:|---:|---:|---:|---:|").unwrap();
    for row in rows {
        let mut walls: Vec<Duration> = row.samples.iter().map(|s| s.wall).collect();
        walls.sort_unstable();
        let med = walls[walls.len() / 2];
        let at_median = row
            .samples
            .iter()
            .find(|s| s.wall == med)
            .map_or(Stats::default(), |s| s.stats);
        let pct = 100.0 * med.as_secs_f64() / scratch.as_secs_f64();
        let goal = row.goal.map_or(String::new(), |g| {
            let verdict = if pct <= g { "met" } else { "missed" };
            format!("<= {g}% ({verdict})")
        });
        writeln!(
            t,
            "| {} | {} ({}-{}) | {pct:.2}% | {goal} | {} | {} | {} |",
            row.what,
            ms(med),
            ms(walls[0]),
            ms(walls[walls.len() - 1]),
            at_median.executed,
            at_median.verified,
            at_median.backdated
        )
        .unwrap();
    }
    t
}

fn target_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}
