//! A check session (`session.rs`: one incremental engine kept across edits) prints,
//! after every edit, exactly what a fresh `check` of the same files prints, on the
//! serial engine and at 1 and 2 threads; and an edit inside one function body
//! re-executes only that function's queries and those of the file it is in.

mod common;

use common::{config, generated};
use compiler_demo::ast::ItemKind;
use compiler_demo::driver::{execute_sources, Command, Mode};
use compiler_demo::parser::parse_file;
use compiler_demo::session::Session;
use compiler_demo::source::{FileId, SourceFile, SourceMap};
use std::collections::BTreeMap;
use std::sync::Arc;
use weft::query::Stats;

const MODES: [Mode; 3] = [Mode::Serial, Mode::Parallel(1), Mode::Parallel(2)];

/// A program as files' bytes by relative path (sorted, as `load` sorts them).
#[derive(Clone)]
struct Program {
    files: BTreeMap<String, Vec<u8>>,
}

impl Program {
    fn generated(modules: u32, items: u32, seed: u64, cycles: u32, errors: u32) -> Program {
        let (sources, _, _) = generated(&config(modules, items, seed, cycles, errors));
        let files = sources
            .files
            .iter()
            .map(|f| (f.path.clone(), f.text().as_bytes().to_vec()))
            .collect();
        Program { files }
    }

    fn sources(&self) -> SourceMap {
        let files = self
            .files
            .iter()
            .map(|(path, bytes)| Arc::new(SourceFile::new(path.clone(), bytes.clone())))
            .collect();
        SourceMap { files }
    }

    fn text(&self, path: &str) -> &str {
        std::str::from_utf8(&self.files[path]).expect("a UTF-8 file")
    }

    /// This program with `path`'s text replaced by `edit` of it.
    fn edit(&self, path: &str, edit: impl FnOnce(&str) -> String) -> Program {
        let text = edit(self.text(path));
        self.with_bytes(path, text.into_bytes())
    }

    fn with_bytes(&self, path: &str, bytes: Vec<u8>) -> Program {
        let mut files = self.files.clone();
        files.insert(path.to_string(), bytes);
        Program { files }
    }

    fn without(&self, path: &str) -> Program {
        let mut files = self.files.clone();
        files.remove(path);
        Program { files }
    }

    /// The number of definitions (items but imports) in `path`.
    fn defs_in(&self, path: &str) -> u64 {
        let items = parse_file(FileId(0), self.text(path)).0.items;
        items
            .iter()
            .filter(|i| !matches!(i.kind, ItemKind::Use(_)))
            .count() as u64
    }
}

/// Replaces the first `from` after the start of function `name` with `to`.
fn in_fn(text: &str, name: &str, from: &str, to: &str) -> String {
    let start = text
        .find(&format!("pub fn {name}("))
        .unwrap_or_else(|| panic!("no function `{name}`"));
    let at = start
        + text[start..]
            .find(from)
            .unwrap_or_else(|| panic!("no `{from}` in `{name}`"));
    format!("{}{to}{}", &text[..at], &text[at + from.len()..])
}

/// One edit of a script: the program after it, and the most queries its re-check may
/// execute, where that is bounded.
struct Step {
    name: &'static str,
    program: Program,
    max_executed: Option<u64>,
}

fn step(name: &'static str, program: Program) -> Step {
    Step {
        name,
        program,
        max_executed: None,
    }
}

/// Checks `start`, then applies every step to one session per mode, comparing each
/// check with a fresh one (in that mode, and serially), and each update's answer with
/// whether any file changed. Returns the re-checks' counts per mode.
fn replay(start: &Program, steps: &[Step]) -> Vec<Vec<Stats>> {
    let fresh_serial: Vec<_> = std::iter::once(start)
        .chain(steps.iter().map(|s| &s.program))
        .map(|p| execute_sources(&p.sources(), Mode::Serial, &Command::Check))
        .collect();
    let mut all = Vec::new();
    for mode in MODES {
        let mut session = Session::new(start.sources(), mode).expect("a pool starts");
        let first = session.check();
        assert_eq!(first.outcome, fresh_serial[0], "{mode:?}: first check");
        let mut counts = Vec::new();
        let mut previous = start;
        for (i, step) in steps.iter().enumerate() {
            let sources = step.program.sources();
            let fresh = execute_sources(&sources, mode, &Command::Check);
            assert_eq!(fresh, fresh_serial[i + 1], "{mode:?}: fresh, {}", step.name);
            let changed = session.update(sources);
            assert_eq!(
                changed,
                step.program.files != previous.files,
                "{}",
                step.name
            );
            let report = session.check();
            assert_eq!(
                report.outcome, fresh,
                "{mode:?}: the re-check after `{}` differs from a fresh check",
                step.name
            );
            if let Some(max) = step.max_executed {
                let stats = report.stats;
                assert!(stats.executed <= max, "{mode:?}, {}: {stats:?}", step.name);
            }
            counts.push(report.stats);
            previous = &step.program;
        }
        all.push(counts);
    }
    all
}

#[test]
fn edits_recheck_as_a_fresh_check_would() {
    let start = Program::generated(12, 16, 3, 0, 0);
    // A level-1 function (its item index is 7), and a level-0 one its callers use.
    let (body_file, body_fn) = ("g0/m5.wd", "f5_7");
    let (sig_file, sig_fn) = ("g0/m2.wd", "f2_3");
    let sig_uses: usize = start
        .files
        .keys()
        .map(|p| start.text(p).matches(&format!("{sig_fn}(")).count())
        .sum();
    assert!(
        sig_uses >= 3,
        "`{sig_fn}` is defined and called at least twice"
    );

    let literal = start.edit(body_file, |t| in_fn(t, body_fn, "% 1009", "% 1013"));
    let longer = literal.edit(body_file, |t| in_fn(t, body_fn, "% 1013", "% 100003"));
    let bool_sig = longer.edit(sig_file, |t| in_fn(t, sig_fn, ") -> i64 {", ") -> bool {"));
    let added = longer.with_bytes(
        "g0/a.wd",
        b"pub fn added(x: i64) -> i64 {\n    x + 1\n}\n".to_vec(),
    );
    let used = added.edit("main.wd", |t| {
        t.replace(
            "    total\n}",
            "    total = total + crate::g0::a::added(1);\n    total\n}",
        )
    });
    let type_error = used.edit(body_file, |t| {
        in_fn(
            t,
            body_fn,
            "    acc\n}",
            "    let injected: bool = acc;\n    acc\n}",
        )
    });
    let mut not_utf8 = used.files[body_file].clone();
    not_utf8.extend_from_slice(b"\n\xff\xfe");

    let defs = start.defs_in(body_file);
    let steps = vec![
        Step {
            name: "nothing",
            program: start.clone(),
            max_executed: Some(0),
        },
        Step {
            name: "a literal in one body, same length",
            program: literal.clone(),
            // The file's Parse and FileOutline (equal), the ItemSyntax of each
            // definition in it (all but one equal: nothing moved), the function's
            // FnSignature (equal), TypeCheck and Lower, its module's ModuleDiagnostics
            // (equal), and LinkedProgram. Imports in the file are not re-read, and
            // nothing else is re-executed.
            max_executed: Some(defs + 7),
        },
        step("a body that gets longer", longer.clone()),
        step("a signature used in several places", bool_sig),
        step("the signature restored", longer.clone()),
        step("a module added before every other file", added.clone()),
        step("the new module used", used.clone()),
        step("a type error in a body", type_error),
        step("the type error fixed", used.clone()),
        step(
            "a file made not UTF-8",
            used.with_bytes(body_file, not_utf8),
        ),
        step("the file made UTF-8 again", used.clone()),
        step("the used module removed", used.without("g0/a.wd")),
        step("back to the start", start.clone()),
    ];
    let counts = replay(&start, &steps);
    for (s, c) in steps.iter().zip(&counts[0]) {
        eprintln!("{:45} {c:?}", s.name);
    }
    // Every engine re-executes the same queries.
    for other in &counts[1..] {
        let executed = |c: &Vec<Stats>| c.iter().map(|s| s.executed).collect::<Vec<_>>();
        assert_eq!(executed(other), executed(&counts[0]));
    }
}

/// The struct whose name appears in the most files other than its own, and its file.
fn most_shared_struct(program: &Program) -> (String, String) {
    let mut best = (0, String::new(), String::new());
    for (path, bytes) in &program.files {
        let text = String::from_utf8_lossy(bytes);
        for line in text.lines() {
            let Some(name) = line
                .strip_prefix("pub struct ")
                .and_then(|r| r.split(' ').next())
            else {
                continue;
            };
            let pattern = format!("::{name} ");
            let users = program
                .files
                .iter()
                .filter(|(p, b)| *p != path && String::from_utf8_lossy(b).contains(&pattern))
                .count();
            if users > best.0 {
                best = (users, name.to_string(), path.clone());
            }
        }
    }
    assert!(best.0 > 0, "some struct is used from another file");
    (best.1, best.2)
}

#[test]
fn edits_to_cycles_names_and_errors_elsewhere_recheck_as_a_fresh_check_would() {
    // Three cycles: aliases `CycA0`/`CycB0` (m0, m1), structs `CycA1`/`CycB1` (m1, m2)
    // and constants `CycA2`/`CycB2` (m2, m3); and one type error.
    let start = Program::generated(6, 8, 5, 3, 1);
    let renamed = start
        .edit("g0/m0.wd", |t| t.replace("CycA0", "CycZ0"))
        .edit("g0/m1.wd", |t| t.replace("CycA0", "CycZ0"));
    let const_cycle_broken = start.edit("g0/m3.wd", |t| t.replace("crate::g0::m2::CycA2 * 2", "2"));
    let (strukt, strukt_file) = most_shared_struct(&start);
    let private = start.edit(&strukt_file, |t| {
        t.replace(
            &format!("pub struct {strukt} "),
            &format!("struct {strukt} "),
        )
    });
    let private_moved = private.edit(&strukt_file, |t| format!("// moved down\n\n{t}"));
    let twice = start.edit("g0/m4.wd", |t| format!("{t}pub const c4_0: i64 = 1;\n"));
    let twice_moved = twice.edit("g0/m4.wd", |t| format!("// moved down\n{t}"));
    let bad_import = start.edit("g0/m5.wd", |t| format!("use crate::nowhere::thing;\n{t}"));
    let bad_import_moved = bad_import.edit("g0/m5.wd", |t| format!("\n\n{t}"));
    let steps = vec![
        step("an alias on a cycle renamed", renamed),
        step("a cycle broken", const_cycle_broken),
        step("the cycle restored", start.clone()),
        step("a struct used elsewhere made private", private),
        step("the private struct moved", private_moved),
        step("the struct public again", start.clone()),
        step("a name defined twice", twice),
        step("both definitions moved", twice_moved),
        step("an import of nothing", bad_import),
        step("the import moved", bad_import_moved),
        step("back to the start", start.clone()),
    ];
    replay(&start, &steps);
    let privacy = execute_sources(&steps[3].program.sources(), Mode::Serial, &Command::Check);
    assert!(privacy.stderr.contains("E0603"), "{}", privacy.stderr);
    let twice = execute_sources(&steps[6].program.sources(), Mode::Serial, &Command::Check);
    assert!(twice.stderr.contains("E0428"), "{}", twice.stderr);
}
