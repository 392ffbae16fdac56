//! The workload generator: a valid program of M modules with K items each, whose `main`
//! result the generator computes itself, so `run` can be checked end to end.
//!
//! Items come in levels: a level-L item refers only to level-(L-1) items in the same
//! or an earlier module (constants add, structs nest, aliases point down, functions
//! call down). Dependency chains are therefore at most `LEVELS` deep however large
//! the program, and every function's value is computed here by a direct model of the
//! code written. References across modules use every path form: full paths, `use`,
//! `use ... as`, glob imports and `super::`.
//!
//! `--cycles` adds alias, struct and const cycles (one diagnostic each) and `--errors`
//! adds type errors in function bodies (one diagnostic each); the expected count goes
//! to `expected_diagnostics.txt`.

use crate::driver::Outcome;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// Number of item levels; bounds every dependency chain.
const LEVELS: usize = 5;
/// Modules per directory.
const GROUP: u32 = 32;
/// Modulus that keeps function values small.
const MODULUS: i64 = 1_000_003;

/// The largest program `gen` writes: far beyond every benchmark here, small enough that
/// a typo cannot fill the disk or run for hours.
pub const MAX_MODULES: u32 = 100_000;
/// Items per module, at most.
pub const MAX_ITEMS: u32 = 10_000;
/// Items in all (modules times items), at most: about 200 MB of source.
pub const MAX_TOTAL_ITEMS: u64 = 2_000_000;
/// Injected cycles, and injected errors, at most.
pub const MAX_FAULTS: u32 = 100_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenConfig {
    pub modules: u32,
    pub items: u32,
    pub seed: u64,
    pub cycles: u32,
    pub errors: u32,
}

/// splitmix64: small, fast, and the same on every platform.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> Option<&'a T> {
        if xs.is_empty() {
            None
        } else {
            Some(&xs[self.below(xs.len() as u64) as usize])
        }
    }
}

/// A generated struct: its module, name and nested struct, if any.
#[derive(Clone)]
struct StructInfo {
    module: u32,
    name: String,
    inner: Option<usize>,
}

#[derive(Clone)]
struct FnInfo {
    module: u32,
    name: String,
    /// Parameters of the body model (see `fn_value`).
    init_const: i64,
    loops: i64,
    mul: i64,
    b: i64,
    strukt: usize,
    callee: Option<usize>,
}

#[derive(Default)]
struct World {
    consts: Vec<Vec<(u32, String, i64)>>,
    structs: Vec<StructInfo>,
    struct_levels: Vec<Vec<usize>>,
    aliases: Vec<Vec<(u32, String, Option<usize>)>>,
    fns: Vec<FnInfo>,
    fn_levels: Vec<Vec<usize>>,
}

fn module_path(i: u32) -> String {
    format!("crate::g{}::m{i}", i / GROUP)
}

/// How module `from` writes a reference to item `name` of module `to`, adding any
/// `use` it needs.
fn reference(
    rng: &mut SplitMix64,
    from: u32,
    to: u32,
    name: &str,
    uses: &mut BTreeSet<String>,
) -> String {
    if from == to {
        return name.to_string();
    }
    match rng.below(5) {
        0 => format!("{}::{name}", module_path(to)),
        1 => {
            uses.insert(format!("use {}::{name};", module_path(to)));
            name.to_string()
        }
        2 => {
            let alias = format!("{name}_via_m{from}");
            uses.insert(format!("use {}::{name} as {alias};", module_path(to)));
            alias
        }
        3 => {
            uses.insert(format!("use {}::*;", module_path(to)));
            name.to_string()
        }
        _ if from / GROUP == to / GROUP => format!("super::m{to}::{name}"),
        _ => format!("{}::{name}", module_path(to)),
    }
}

impl World {
    fn new() -> World {
        World {
            consts: vec![Vec::new(); LEVELS],
            struct_levels: vec![Vec::new(); LEVELS],
            aliases: vec![Vec::new(); LEVELS],
            fn_levels: vec![Vec::new(); LEVELS],
            ..World::default()
        }
    }

    /// A struct literal for struct `s`, with top-level fields `a` and `b` as given.
    fn struct_lit(&self, s: usize, a: &str, b: &str) -> String {
        let info = &self.structs[s];
        let mut lit = format!(
            "{}::{} {{ a: {a}, b: {b}",
            module_path(info.module),
            info.name
        );
        if let Some(inner) = info.inner {
            let _ = write!(lit, ", inner: {}", self.struct_lit(inner, "3", "4"));
        }
        lit.push_str(" }");
        lit
    }

    /// The value `f(x)` computes; mirrors the body written by `write_fn`.
    fn fn_value(&self, f: usize, x: i64) -> i64 {
        let info = &self.fns[f];
        let mut acc = x % 1009 + info.init_const;
        let mut i = 0;
        while i < info.loops {
            acc = (acc * info.mul + i) % MODULUS;
            i += 1;
        }
        let (sa, sb) = (acc, info.b);
        if sa > sb {
            acc -= sb;
        } else {
            acc += sb * 2;
        }
        if self.structs[info.strukt].inner.is_some() {
            acc += 3;
        }
        if let Some(c) = info.callee {
            acc += self.fn_value(c, acc % 1000);
        }
        acc
    }
}

impl GenConfig {
    /// Checks the sizes against the limits above, naming the one exceeded.
    pub fn validate(&self) -> Result<(), String> {
        let over = |what: &str, value: u64, max: u64| {
            (value > max).then(|| format!("{what} is {value}, more than the limit of {max}"))
        };
        let total = u64::from(self.modules.max(1)) * u64::from(self.items);
        let problem = over("--modules", self.modules.into(), MAX_MODULES.into())
            .or_else(|| over("--items", self.items.into(), MAX_ITEMS.into()))
            .or_else(|| over("--modules times --items", total, MAX_TOTAL_ITEMS))
            .or_else(|| over("--cycles", self.cycles.into(), MAX_FAULTS.into()))
            .or_else(|| over("--errors", self.errors.into(), MAX_FAULTS.into()));
        problem.map_or(Ok(()), Err)
    }
}

/// Generates the program into `dir` and reports `main`'s value.
pub fn write(dir: &Path, config: &GenConfig) -> Outcome {
    if let Err(e) = config.validate() {
        return Outcome::usage(e);
    }
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Outcome::usage(format!("`{}` exists and is not empty", dir.display()));
    }
    let (files, expected, diag_count) = generate(config);
    for (rel, text) in &files {
        let path = dir.join(rel);
        let parent = path.parent().unwrap_or(dir);
        if let Err(e) = std::fs::create_dir_all(parent) {
            return Outcome::usage(format!("cannot create `{}`: {e}", parent.display()));
        }
        if let Err(e) = std::fs::write(&path, text) {
            return Outcome::usage(format!("cannot write `{}`: {e}", path.display()));
        }
    }
    let extra = [
        ("expected_output.txt", format!("{expected}\n")),
        ("expected_diagnostics.txt", format!("{diag_count}\n")),
    ];
    for (name, text) in extra {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            return Outcome::usage(format!("cannot write `{}`: {e}", path.display()));
        }
    }
    Outcome {
        stdout: format!("{expected}\n"),
        stderr: String::new(),
        code: 0,
    }
}

/// The program's files (relative path, text), `main`'s value when no faults are
/// injected, and the number of diagnostics the injected faults produce.
pub fn generate(config: &GenConfig) -> (Vec<(String, String)>, i64, u32) {
    let mut rng = SplitMix64::new(config.seed);
    let mut world = World::new();
    let mut files = Vec::new();
    let modules = config.modules.max(1);
    // Functions are every fourth item; errors go into distinct ones, the rest (if
    // there are more errors than functions) into `main`.
    let fn_count = u64::from(modules) * u64::from(config.items / 4);
    let error_fns: BTreeSet<u64> = pick_distinct(&mut rng, config.errors, fn_count);
    let mut fn_counter = 0u64;
    let mut errors_written = 0;
    let mut main_calls = Vec::new();
    for m in 0..modules {
        let mut uses = BTreeSet::new();
        let mut body = String::new();
        for j in 0..config.items {
            let level = (j as usize / 4) % LEVELS;
            match j % 4 {
                0 => write_const(&mut rng, &mut world, &mut uses, &mut body, m, j, level),
                1 => write_struct(&mut rng, &mut world, &mut uses, &mut body, m, j, level),
                2 => write_alias(&mut rng, &mut world, &mut uses, &mut body, m, j, level),
                _ => {
                    let bad = error_fns.contains(&fn_counter);
                    let idx =
                        write_fn(&mut rng, &mut world, &mut uses, &mut body, m, j, level, bad);
                    errors_written += u32::from(bad);
                    fn_counter += 1;
                    main_calls.push(idx);
                }
            }
        }
        let mut text = String::new();
        for u in &uses {
            text.push_str(u);
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&body);
        files.push((format!("g{}/m{m}.wd", m / GROUP), text));
    }
    // Error injections fall on function counters; any beyond the number of functions
    // become statements in `main`.
    let mut main = String::from("// Generated by `compiler-demo gen`.\n\npub fn main() -> i64 {\n    let mut total: i64 = 0;\n");
    let mut expected: i64 = 0;
    for (n, &f) in main_calls.iter().enumerate() {
        let arg = (n as i64 * 7) % 100;
        let info = &world.fns[f];
        let _ = writeln!(
            main,
            "    total = total + {}::{}({arg});",
            module_path(info.module),
            info.name
        );
        expected = expected.wrapping_add(world.fn_value(f, arg));
    }
    while errors_written < config.errors {
        let _ = writeln!(
            main,
            "    let injected_{errors_written}: bool = {errors_written};"
        );
        errors_written += 1;
    }
    main.push_str("    total\n}\n");
    let cycles = write_cycles(&mut files, config.cycles, modules);
    files.push(("main.wd".to_string(), main));
    (files, expected, cycles + config.errors)
}

fn pick_distinct(rng: &mut SplitMix64, count: u32, range: u64) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    let count = u64::from(count).min(range);
    while (out.len() as u64) < count {
        out.insert(rng.below(range));
    }
    out
}

fn write_const(
    rng: &mut SplitMix64,
    w: &mut World,
    uses: &mut BTreeSet<String>,
    out: &mut String,
    m: u32,
    j: u32,
    level: usize,
) {
    let name = format!("c{m}_{j}");
    let lit = rng.below(1000) as i64;
    let below = if level > 0 {
        rng.pick(&w.consts[level - 1]).cloned()
    } else {
        None
    };
    let (expr, value) = match below {
        Some((cm, cname, cval)) => {
            let r = reference(rng, m, cm, &cname, uses);
            (
                format!("{lit} + {r} * 2 - {r} % 3"),
                lit + cval * 2 - cval % 3,
            )
        }
        None => (format!("{lit}"), lit),
    };
    let _ = writeln!(out, "pub const {name}: i64 = {expr};\n");
    w.consts[level].push((m, name, value));
}

fn write_struct(
    rng: &mut SplitMix64,
    w: &mut World,
    uses: &mut BTreeSet<String>,
    out: &mut String,
    m: u32,
    j: u32,
    level: usize,
) {
    let name = format!("S{m}_{j}");
    let inner = if level > 0 {
        rng.pick(&w.struct_levels[level - 1]).copied()
    } else {
        None
    };
    let mut text = format!("pub struct {name} {{\n    a: i64,\n    b: i64,\n");
    if let Some(i) = inner {
        // Half the time, name the inner struct through an alias that expands to it.
        let alias = w.aliases[level - 1]
            .iter()
            .find(|(_, _, target)| *target == Some(i))
            .cloned();
        let ty = match alias {
            Some((am, aname, _)) if rng.below(2) == 0 => reference(rng, m, am, &aname, uses),
            _ => reference(
                rng,
                m,
                w.structs[i].module,
                &w.structs[i].name.clone(),
                uses,
            ),
        };
        let _ = writeln!(text, "    inner: {ty},");
    }
    text.push_str("}\n\n");
    out.push_str(&text);
    let idx = w.structs.len();
    w.structs.push(StructInfo {
        module: m,
        name,
        inner,
    });
    w.struct_levels[level].push(idx);
}

fn write_alias(
    rng: &mut SplitMix64,
    w: &mut World,
    uses: &mut BTreeSet<String>,
    out: &mut String,
    m: u32,
    j: u32,
    level: usize,
) {
    let name = format!("T{m}_{j}");
    let (rhs, target) = match rng.below(3) {
        0 if level > 0 && !w.aliases[level - 1].is_empty() => {
            let (am, aname, t) = rng.pick(&w.aliases[level - 1]).cloned().unwrap_or_default();
            (reference(rng, m, am, &aname, uses), t)
        }
        1 => ("i64".to_string(), None),
        _ => match rng.pick(&w.struct_levels[level]).copied() {
            Some(s) => {
                let (sm, sname) = (w.structs[s].module, w.structs[s].name.clone());
                (reference(rng, m, sm, &sname, uses), Some(s))
            }
            None => ("bool".to_string(), None),
        },
    };
    let _ = writeln!(out, "pub type {name} = {rhs};\n");
    w.aliases[level].push((m, name, target));
}

#[allow(clippy::too_many_arguments)]
fn write_fn(
    rng: &mut SplitMix64,
    w: &mut World,
    uses: &mut BTreeSet<String>,
    out: &mut String,
    m: u32,
    j: u32,
    level: usize,
    bad: bool,
) -> usize {
    let name = format!("f{m}_{j}");
    let (cm, cname, cval) = rng
        .pick(&w.consts[0])
        .cloned()
        .unwrap_or((m, String::new(), 0));
    let cref = if cname.is_empty() {
        "0".to_string()
    } else {
        reference(rng, m, cm, &cname, uses)
    };
    let loops = rng.below(4) as i64 + 1;
    let mul = rng.below(90) as i64 + 2;
    let b = rng.below(500) as i64;
    let strukt = if w.structs.is_empty() {
        // The very first function may come before any struct: give it its own.
        let sname = format!("Local{m}_{j}");
        let _ = writeln!(out, "pub struct {sname} {{\n    a: i64,\n    b: i64,\n}}\n");
        w.structs.push(StructInfo {
            module: m,
            name: sname,
            inner: None,
        });
        w.structs.len() - 1
    } else {
        rng.below(w.structs.len() as u64) as usize
    };
    let callee = if level > 0 {
        rng.pick(&w.fn_levels[level - 1]).copied()
    } else {
        None
    };
    let lit = w.struct_lit(strukt, "acc", &b.to_string());
    let _ = writeln!(out, "pub fn {name}(x: i64) -> i64 {{");
    let _ = writeln!(out, "    let mut acc: i64 = x % 1009 + {cref};");
    let _ = writeln!(out, "    let mut i = 0;\n    while i < {loops} {{\n        acc = (acc * {mul} + i) % {MODULUS};\n        i = i + 1;\n    }}");
    let _ = writeln!(out, "    let s = {lit};");
    let _ = writeln!(out, "    if s.a > s.b {{\n        acc = acc - s.b;\n    }} else {{\n        acc = acc + s.b * 2;\n    }}");
    if w.structs[strukt].inner.is_some() {
        let _ = writeln!(out, "    acc = acc + s.inner.a;");
    }
    if let Some(c) = callee {
        let (fm, fname) = (w.fns[c].module, w.fns[c].name.clone());
        let r = reference(rng, m, fm, &fname, uses);
        let _ = writeln!(out, "    acc = acc + {r}(acc % 1000);");
    }
    if bad {
        let _ = writeln!(out, "    let injected: bool = acc;");
    }
    let _ = writeln!(out, "    acc\n}}\n");
    let idx = w.fns.len();
    w.fns.push(FnInfo {
        module: m,
        name,
        init_const: cval,
        loops,
        mul,
        b,
        strukt,
        callee,
    });
    w.fn_levels[level].push(idx);
    idx
}

/// Appends `count` cycles to the generated modules: alias, struct and const cycles in
/// turn, spanning two modules when there are two. Returns the diagnostics they cause.
fn write_cycles(files: &mut [(String, String)], count: u32, modules: u32) -> u32 {
    for n in 0..count {
        let a = (n * 7) % modules;
        let b = (a + 1) % modules;
        let (pa, pb) = (module_path(a), module_path(b));
        let (text_a, text_b) = match n % 3 {
            0 => (
                format!("pub type CycA{n} = {pb}::CycB{n};\n"),
                format!("pub type CycB{n} = {pa}::CycA{n};\n"),
            ),
            1 => (
                format!("pub struct CycA{n} {{\n    x: i64,\n    next: {pb}::CycB{n},\n}}\n"),
                format!("pub struct CycB{n} {{\n    prev: {pa}::CycA{n},\n}}\n"),
            ),
            _ => (
                format!("pub const CycA{n}: i64 = {pb}::CycB{n} + 1;\n"),
                format!("pub const CycB{n}: i64 = {pa}::CycA{n} * 2;\n"),
            ),
        };
        files[a as usize].1.push_str(&text_a);
        files[b as usize].1.push_str(&text_b);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64, cycles: u32, errors: u32) -> GenConfig {
        GenConfig {
            modules: 4,
            items: 12,
            seed,
            cycles,
            errors,
        }
    }

    #[test]
    fn same_seed_same_program() {
        assert_eq!(generate(&config(5, 1, 1)), generate(&config(5, 1, 1)));
        assert_ne!(generate(&config(5, 0, 0)).0, generate(&config(6, 0, 0)).0);
    }

    #[test]
    fn faults_are_counted() {
        let (_, _, diags) = generate(&config(5, 4, 3));
        assert_eq!(diags, 7);
    }

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs of splitmix64 seeded with 0 (Vigna's reference implementation).
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }
}
