//! Reporting query cycles, once each.
//!
//! A cycle arrives once per participant, each carrying a `Step`: its query and key and
//! the right-hand side that leads on around the cycle (an alias's type, a constant's
//! initializer, an import's path). Structs that contain themselves are reported as
//! rustc does, E0072, with every field that recurses labelled; every other cycle is
//! E0391: the step that comes first in the source is the error, each further step a
//! note with its own snippet.

use crate::diagnostics::Diag;
use crate::engine::Cycle;
use crate::modtree::DefId;
use crate::source::Span;
use rustc_hash::FxHashMap as HashMap;

/// A participant's (query name, key) as the engine reports it.
pub type StepKey = (&'static str, String);

/// One participant of a cycle, as its item or import describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub cycle: Cycle,
    pub key: StepKey,
    /// The right-hand side that leads on around the cycle.
    pub span: Span,
    /// For a struct's size: the struct and its fields.
    pub shape: Option<StructShape>,
}

/// What an infinite-size report needs to know about one struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructShape {
    pub def: DefId,
    /// `struct Name`.
    pub header: Span,
    /// The type of each field that names a struct, and that struct.
    pub fields: Vec<(Span, DefId)>,
}

/// How a cycle step reads in a report; `None` for steps that only connect others
/// (path resolutions between imports).
fn describe(query: &str, key: &str) -> Option<String> {
    Some(match query {
        "expand_alias" => format!("expanding type alias `{key}`"),
        "struct_layout" => format!("computing the size of struct `{key}`"),
        "const_eval" => format!("evaluating constant `{key}`"),
        "resolve_use" => match key.split_once("::{use ") {
            Some((module, path)) => format!(
                "resolving the import `{}` in `{module}`",
                path.trim_end_matches('}')
            ),
            None => format!("resolving `{key}`"),
        },
        "resolve_path" => return None,
        _ => format!("computing `{query}({key})`"),
    })
}

/// The diagnostic for one cycle.
pub fn cycle_diag(cycle: &Cycle, steps: &HashMap<StepKey, Step>) -> Diag {
    let all = cycle.participants();
    let mut parts: Vec<&StepKey> = all
        .iter()
        .filter(|(n, k)| describe(n, k).is_some())
        .collect();
    if parts.is_empty() {
        parts = all.iter().collect();
    }
    let shapes: Option<Vec<&StructShape>> = parts
        .iter()
        .map(|p| steps.get(*p).and_then(|s| s.shape.as_ref()))
        .collect();
    if let Some(shapes) = shapes {
        return infinite_size(shapes, parts.iter().map(|p| p.1.as_str()).collect());
    }
    // Start the report at the step that comes first in the source, whatever rotation
    // the engine chose, so the text reads in program order.
    let span_of = |p: &StepKey| steps.get(p).map(|s| s.span);
    let first = (0..parts.len())
        .min_by_key(|&i| {
            let span = span_of(parts[i]);
            (span.is_none(), span.map(|s| (s.file, s.start)), parts[i])
        })
        .unwrap_or(0);
    parts.rotate_left(first);
    let desc: Vec<String> = parts
        .iter()
        .map(|(n, k)| describe(n, k).unwrap_or_else(|| format!("computing `{n}({k})`")))
        .collect();
    let mut d = Diag::error("E0391", format!("cycle detected when {}", desc[0]));
    if let Some(s) = span_of(parts[0]) {
        d = d.at(s, "");
    }
    for (i, text) in desc.iter().enumerate().skip(1) {
        let step = format!("...which requires {text}...");
        d = match span_of(parts[i]) {
            Some(s) => d.note_at(s, step),
            None => d.note(step),
        };
    }
    if parts.len() == 1 {
        d.note(format!("...which immediately requires {} again", desc[0]))
    } else {
        d.note(format!(
            "...which again requires {}, completing the cycle",
            desc[0]
        ))
    }
}

/// E0072: structs whose size is infinite because each contains the next.
fn infinite_size(mut shapes: Vec<&StructShape>, names: Vec<&str>) -> Diag {
    let mut names: Vec<(Span, &str)> = shapes.iter().map(|s| s.header).zip(names).collect();
    names.sort();
    shapes.sort_by_key(|s| s.header);
    let quoted: Vec<String> = names.iter().map(|(_, n)| format!("`{n}`")).collect();
    let message = match quoted.as_slice() {
        [one] => format!("recursive type {one} has infinite size"),
        [init @ .., last] => format!(
            "recursive types {} and {last} have infinite size",
            init.join(", ")
        ),
        [] => "recursive type has infinite size".to_string(),
    };
    let in_cycle: Vec<DefId> = shapes.iter().map(|s| s.def).collect();
    let mut d = Diag::error("E0072", message);
    for s in &shapes {
        d = d.at(s.header, "");
        for &(span, target) in &s.fields {
            if in_cycle.contains(&target) {
                d = d.with_secondary(span, "recursive without indirection");
            }
        }
    }
    d.help(
        "a struct holds its fields inline, so it cannot contain itself, even through other \
         structs: remove or change one of the fields marked",
    )
}
